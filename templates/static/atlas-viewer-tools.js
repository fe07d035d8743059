/* atlas-viewer-tools.js: the tools at the top left of the stage.

   A search box with completion over the manifest's class labels (an ARIA 1.2 combobox) that
   picks the class of the heat map (view.panel.chooseClass), the density slider (log scale,
   0.2..8; view.paint.setDensity) and the labels switch (view.paint.setLabels); each appears
   only when the atlas has what it needs. Stages narrower than COMPACT_BELOW ("compact": layers
   side by side, phones) fold the tools into one button at the top left, which opens and
   closes them (Escape closes them too), and the view buttons are smaller, so the atlas stays
   visible.

   API (view.tools): refresh() (show the tools this atlas supports), showClass(k) (the search
   box shows class k, null: none). Listens to "metadata" (labels appear once the coarse grid
   has top classes) and "density" on the view. */

import { el } from "./atlas-viewer-util.js";

var MAX_OPTIONS = 8;
/* Stages narrower than this (CSS px) fold the tools into one button: their row (search box
   13rem, density, labels: ~400 px) beside the four view buttons (~150 px) needs about this. */
var COMPACT_BELOW = 560;

export class Tools {
  constructor(view) {
    var self = this;
    this.view = view;
    this.element = view.figure.querySelector(".atlas-tools");
    this.wireFolding();
    this.wireSearch();
    this.wireDensity();
    var labels = view.figure.querySelector(".atlas-labels-toggle input");
    labels.addEventListener("change", function () { view.paint.setLabels(labels.checked); });
    view.on("metadata", function () { self.refresh(); });
    view.on("density", function () { self.showDensity(); });
    this.refresh();
  }

  /* Show the tools this atlas supports (labels once the coarse grid's metadata has classes). */
  refresh() {
    var view = this.view, fig = view.figure;
    var levels = view.manifest.levels || [];
    var search = fig.querySelector(".atlas-search");
    var density = fig.querySelector(".atlas-density");
    var labels = fig.querySelector(".atlas-labels-toggle");
    search.hidden = !view.paint.heatAvailable() || !(view.manifest.labels || []).length;
    density.hidden = !view.paint.densityAvailable();
    labels.hidden = !(levels[0] && view.cells.hasTop(levels[0]));
    this.element.hidden = search.hidden && density.hidden && labels.hidden;
  }

  /* Narrow stages are "compact": the tools fold into one button (see the top). */
  wireFolding() {
    var self = this, view = this.view, stage = view.stage;
    var tools = this.element;
    var toggle = tools.querySelector(".atlas-tools-toggle");
    toggle.addEventListener("click", function () { self.open(toggle.getAttribute("aria-expanded") !== "true"); });
    tools.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || event.defaultPrevented) return; /* the class box's own Escape */
      if (!stage.classList.contains("atlas-compact") || toggle.getAttribute("aria-expanded") !== "true") return;
      self.open(false);
      toggle.focus();
      event.stopPropagation();
    });
    var fit = function () {
      var compact = stage.clientWidth < COMPACT_BELOW;
      if (compact !== stage.classList.contains("atlas-compact")) {
        stage.classList.toggle("atlas-compact", compact);
        view.viewer.forceRedraw(); /* painted labels keep clear of the tools */
      }
    };
    view.viewer.addHandler("resize", fit);
    fit();
  }

  open(open) {
    this.element.classList.toggle("atlas-tools-open", open);
    this.element.querySelector(".atlas-tools-toggle").setAttribute("aria-expanded", String(open));
    this.view.viewer.forceRedraw();
  }

  /* --- class search (combobox) -------------------------------------------------------------- */

  wireSearch() {
    var view = this.view;
    var input = view.figure.querySelector(".atlas-class-input");
    var list = view.figure.querySelector(".atlas-class-list");
    var clear = view.figure.querySelector(".atlas-class-clear");
    var labels = view.manifest.labels || [];
    var lower = labels.map(function (label) { return String(label).toLowerCase(); });
    var active = -1, options = [];

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function mark(i) {
      active = i;
      Array.prototype.forEach.call(list.children, function (item, j) {
        item.setAttribute("aria-selected", j === i ? "true" : "false");
      });
      if (i >= 0) input.setAttribute("aria-activedescendant", list.children[i].id);
      else input.removeAttribute("aria-activedescendant");
    }
    function update() {
      var q = input.value.trim().toLowerCase();
      list.textContent = "";
      options = [];
      if (!q) { close(); return; }
      var starts = [], contains = [];
      for (var i = 0; i < lower.length && starts.length < MAX_OPTIONS; i++) {
        var at = lower[i].indexOf(q);
        if (at === 0) starts.push(i);
        else if (at > 0 && contains.length < MAX_OPTIONS) contains.push(i);
      }
      options = starts.concat(contains).slice(0, MAX_OPTIONS);
      options.forEach(function (k, j) {
        var item = el("li", "atlas-class-option", labels[k]);
        item.id = view.id + "-class-" + j;
        item.setAttribute("role", "option");
        item.setAttribute("data-class", String(k));
        item.addEventListener("mousedown", function (event) { event.preventDefault(); });
        item.addEventListener("click", function () { view.panel.chooseClass(k); close(); });
        list.appendChild(item);
      });
      if (!options.length) list.appendChild(el("li", "atlas-class-none", "No class matches"));
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      mark(options.length ? 0 : -1);
    }
    input.addEventListener("input", update);
    input.addEventListener("blur", close);
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (list.hidden) update();
        if (options.length) {
          var step = event.key === "ArrowDown" ? 1 : -1;
          mark((active + step + options.length) % options.length);
        }
        event.preventDefault();
      } else if (event.key === "Enter") {
        if (active >= 0 && options[active] !== undefined) { view.panel.chooseClass(options[active]); close(); }
        event.preventDefault();
      } else if (event.key === "Escape") {
        if (!list.hidden) close();
        else view.panel.chooseClass(null);
        event.preventDefault();
      }
    });
    clear.addEventListener("click", function () { view.panel.chooseClass(null); input.focus(); });
  }

  /* The search box shows class k (null: empty, no clear button). */
  showClass(k) {
    var fig = this.view.figure;
    fig.querySelector(".atlas-class-input").value = k === null ? "" : this.view.label(k);
    fig.querySelector(".atlas-class-clear").hidden = k === null;
  }

  /* --- density ------------------------------------------------------------------------------- */

  wireDensity() {
    var view = this.view;
    var input = view.figure.querySelector(".atlas-density input");
    input.addEventListener("input", function () {
      view.touch();
      view.paint.setDensity(Math.pow(2, Number(input.value)));
    });
    input.addEventListener("change", function () { view.writeHash(); });
    this.showDensity();
  }

  /* The slider and its read-out follow view.paint.density. */
  showDensity() {
    var input = this.view.figure.querySelector(".atlas-density input");
    var output = this.view.figure.querySelector(".atlas-density output");
    if (!input) return;
    var density = this.view.paint.density;
    var text = "×" + (density < 1 ? density.toFixed(2) : density.toFixed(1)).replace(/\.?0+$/, "");
    if (Math.abs(Math.pow(2, Number(input.value)) - density) > 1e-6) input.value = String(Math.log2(density));
    input.setAttribute("aria-valuetext", text);
    output.textContent = text;
  }
}

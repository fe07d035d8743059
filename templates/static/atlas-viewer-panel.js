/* atlas-viewer-panel.js: the tools and the details panel of an atlas viewer.

   Tools (top left of the stage): a search box with completion over the manifest's class labels
   (an ARIA 1.2 combobox) that picks the class of the heat map, the density slider (log scale,
   0.2..8) and the labels switch; each appears only when the atlas has what it needs. In a
   narrow stage they fold into one button that opens them.
   Panel (right of the stage, a bottom sheet on narrow screens): the selected cell (click, or
   Enter at the centre) with its count, top classes and dataset examples; the heat-mapped class
   with a legend and its most attributed cells, which fly the view to themselves when clicked.

   Dataset examples come from examples-<G>/ (generator/viewerdata.py): index.json gives the
   number of thumbnails per cell, one sprite sheet holds a block of B x B cells; a grid without
   examples borrows those of the cell containing it in the nearest coarser grid.
*/
(function (AV) {
  "use strict";

  var TOP_CELLS = 8;
  var MAX_OPTIONS = 8;
  /* Stages narrower than this (CSS px) fold the tools into one button: their row (search box
     13rem, density, labels: ~400 px) beside the four view buttons (~150 px) needs about this. */
  var COMPACT_BELOW = 560;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  AV.prototype.initPanel = function (OSD) {
    var self = this;
    var fig = this.figure;
    this.panel = fig.querySelector(".atlas-panel");
    this.selected = null;
    this.examplesIndex = {};
    this.sheets = {};
    new OSD.MouseTracker({
      element: this.viewer.canvas,
      moveHandler: function (event) {
        if (!self.image) return;
        var p = self.pointerToImage(event.position);
        self.showCellAt(p.x, p.y, event.position);
      },
      leaveHandler: function () { self.hideCell(); }
    }).setTracking(true);
    this.viewer.addHandler("canvas-click", function (event) {
      if (!event.quick) return;
      var p = self.pointerToImage(event.position);
      var cell = self.cellAt(p.x, p.y);
      if (cell) { self.touched = true; self.selectCell(cell.level.grid, cell.col, cell.row); }
    });
    this.panel.querySelector(".atlas-panel-close").addEventListener("click", function () {
      self.closePanel();
      self.viewer.canvas.focus();
    });
    this.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { self.closePanel(); self.viewer.canvas.focus(); }
    });
    this.wireTools();
    this.wireSearch();
    this.wireDensity();
    var labels = fig.querySelector(".atlas-labels-toggle input");
    labels.addEventListener("change", function () { self.setLabels(labels.checked); });
    this.refreshTools();
  };

  /* Show the tools this atlas supports (labels once the coarse grid's metadata has classes). */
  AV.prototype.refreshTools = function () {
    var fig = this.figure;
    var levels = this.manifest.levels || [];
    var search = fig.querySelector(".atlas-search");
    var density = fig.querySelector(".atlas-density");
    var labels = fig.querySelector(".atlas-labels-toggle");
    search.hidden = !this.heatAvailable() || !(this.manifest.labels || []).length;
    density.hidden = !this.densityAvailable();
    var coarse = levels[0] && this.meta[levels[0].grid];
    labels.hidden = !(coarse && coarse.hasTop);
    fig.querySelector(".atlas-tools").hidden = search.hidden && density.hidden && labels.hidden;
  };

  /* Narrow stages (layers side by side, phones) are "compact": the tools fold into one button
     at the top left, which opens and closes them (Escape closes them too), and the view
     buttons are smaller, so the atlas stays visible. */
  AV.prototype.wireTools = function () {
    var self = this;
    var tools = this.figure.querySelector(".atlas-tools");
    var toggle = tools.querySelector(".atlas-tools-toggle");
    toggle.addEventListener("click", function () { self.openTools(toggle.getAttribute("aria-expanded") !== "true"); });
    tools.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || event.defaultPrevented) return; /* the class box's own Escape */
      if (!self.stage.classList.contains("atlas-compact") || toggle.getAttribute("aria-expanded") !== "true") return;
      self.openTools(false);
      toggle.focus();
      event.stopPropagation();
    });
    var fit = function () {
      var compact = self.stage.clientWidth < COMPACT_BELOW;
      if (compact !== self.stage.classList.contains("atlas-compact")) {
        self.stage.classList.toggle("atlas-compact", compact);
        self.viewer.forceRedraw(); /* painted labels keep clear of the tools */
      }
    };
    this.viewer.addHandler("resize", fit);
    fit();
  };

  AV.prototype.openTools = function (open) {
    var tools = this.figure.querySelector(".atlas-tools");
    tools.classList.toggle("atlas-tools-open", open);
    tools.querySelector(".atlas-tools-toggle").setAttribute("aria-expanded", String(open));
    this.viewer.forceRedraw();
  };

  /* --- class search (combobox) -------------------------------------------------------------- */

  AV.prototype.wireSearch = function () {
    var self = this;
    var input = this.figure.querySelector(".atlas-class-input");
    var list = this.figure.querySelector(".atlas-class-list");
    var clear = this.figure.querySelector(".atlas-class-clear");
    var labels = this.manifest.labels || [];
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
        item.id = self.id + "-class-" + j;
        item.setAttribute("role", "option");
        item.setAttribute("data-class", String(k));
        item.addEventListener("mousedown", function (event) { event.preventDefault(); });
        item.addEventListener("click", function () { self.chooseClass(k); close(); });
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
        if (active >= 0 && options[active] !== undefined) { self.chooseClass(options[active]); close(); }
        event.preventDefault();
      } else if (event.key === "Escape") {
        if (!list.hidden) close();
        else self.chooseClass(null);
        event.preventDefault();
      }
    });
    clear.addEventListener("click", function () { self.chooseClass(null); input.focus(); });
  };

  /* Heat-map class k (null: none): the tint, the search box, the panel's heat section. */
  AV.prototype.chooseClass = function (k) {
    var valid = k !== null && k >= 0 && k < (this.manifest.labels || []).length && this.heatAvailable();
    if (!valid) k = null;
    var input = this.figure.querySelector(".atlas-class-input");
    input.value = k === null ? "" : this.label(k);
    this.figure.querySelector(".atlas-class-clear").hidden = k === null;
    this.touched = this.touched || k !== null;
    this.setHeatClass(k);
    /* A class chosen for this viewer by a linked one tints it without opening its panel. */
    this.heatQuiet = !!this.linking;
    this.figure.setAttribute("data-class", k === null ? "" : String(k));
    var section = this.panel.querySelector(".atlas-heat");
    if (k === null) {
      section.hidden = true;
      section.textContent = "";
      this.updatePanel();
    } else {
      this.renderHeat(null);
      if (!this.heatQuiet) this.reveal(section);
      var level = this.heatLevelFor(this.levelForZoom());
      var data = this.heatFor(level);
      if (data) this.renderHeat(data);
    }
    if (this.classChosen) this.classChosen(k); /* linked viewers (atlas-viewer-linked.js) */
    this.writeHash();
  };

  /* Heat data arrived (or the grid changed): list it when it is the one shown. */
  AV.prototype.heatArrived = function (data) {
    if (data.level === this.heatLevelFor(this.levelForZoom())) this.renderHeat(data);
  };

  AV.prototype.levelChanged = function () {
    if (this.heat && this.heat.klass !== null) {
      var data = this.heatFor(this.heatLevelFor(this.levelForZoom()));
      if (data) this.renderHeat(data);
    }
  };

  /* The heat section: class, legend, most attributed cells (data null: loading). */
  AV.prototype.renderHeat = function (data) {
    var self = this;
    var section = this.panel.querySelector(".atlas-heat");
    var k = this.heat.klass;
    section.textContent = "";
    var head = el("h3", "atlas-panel-title");
    head.appendChild(document.createTextNode("Attribution to "));
    head.appendChild(el("q", "", this.label(k)));
    section.appendChild(head);
    if (!data) {
      section.appendChild(el("p", "atlas-panel-meta", "Loading the heat map…"));
    } else {
      var g = data.level.grid;
      section.appendChild(el("p", "atlas-panel-meta", "Mean attribution per cell of the " + AV.gridName(g) + " grid"));
      var legend = el("div", "atlas-legend");
      legend.setAttribute("role", "img");
      legend.setAttribute("aria-label", "Blue: negative, down to " + AV.formatValue(-data.max) +
        "; red: positive, up to " + AV.formatValue(data.max));
      legend.appendChild(el("span", "atlas-legend-bar"));
      var ticks = el("span", "atlas-legend-ticks");
      ticks.appendChild(el("span", "", AV.formatValue(-data.max)));
      ticks.appendChild(el("span", "", "0"));
      ticks.appendChild(el("span", "", "+" + AV.formatValue(data.max)));
      legend.appendChild(ticks);
      section.appendChild(legend);
      var order = [];
      for (var i = 0; i < data.values.length; i++) if (data.values[i] > 0) order.push(i);
      order.sort(function (a, b) { return data.values[b] - data.values[a] || a - b; });
      section.appendChild(el("h4", "atlas-panel-subtitle", "Most attributed cells"));
      if (!order.length) section.appendChild(el("p", "atlas-panel-meta", "No cell attributes positively to this class."));
      var list = el("ol", "atlas-topcells");
      order.slice(0, TOP_CELLS).forEach(function (flat) {
        var col = flat % g, row = Math.floor(flat / g);
        var item = el("li");
        var button = el("button", "atlas-topcell");
        button.type = "button";
        button.setAttribute("data-cell", col + "," + row);
        button.appendChild(el("span", "", "Cell " + col + ", " + row));
        var value = el("span", "atlas-value", "+" + AV.formatValue(data.values[flat]));
        button.appendChild(value);
        var bar = el("span", "atlas-bar");
        bar.style.setProperty("--share", (data.values[flat] / (data.max || 1)).toFixed(3));
        button.appendChild(bar);
        button.addEventListener("click", function () { self.flyToCell(data.level, col, row); });
        item.appendChild(button);
        list.appendChild(item);
      });
      section.appendChild(list);
      this.figure.setAttribute("data-heat-grid", String(g));
    }
    section.hidden = this.heatQuiet;
    if (!this.heatQuiet) { this.panel.hidden = false; this.replaceInfo(); }
  };

  /* Show a panel section and scroll the panel to it (the latest thing the reader asked for). */
  AV.prototype.reveal = function (section) {
    section.hidden = false;
    this.panel.hidden = false;
    this.panel.scrollTop = Math.max(0, section.offsetTop - 12);
    this.replaceInfo(); /* the tooltip keeps off the panel */
  };

  /* Move so that the cell sits in the middle with its grid shown, and select it. */
  AV.prototype.flyToCell = function (level, col, row) {
    var size = AV.cellSize(level);
    var z = 0.75 / (level.scale || 1); /* icons at 0.75 of cell_px: this grid is shown */
    var box = this.viewer.container.getBoundingClientRect();
    var w = box.width / z, h = box.height / z;
    this.touched = true;
    this.fit([(col + 0.5) * size - w / 2, (row + 0.5) * size - h / 2, w, h]);
    this.selectCell(level.grid, col, row);
  };

  /* --- density and labels ------------------------------------------------------------------- */

  AV.prototype.wireDensity = function () {
    var self = this;
    var input = this.figure.querySelector(".atlas-density input");
    input.addEventListener("input", function () {
      self.touched = true;
      self.setDensity(Math.pow(2, Number(input.value)));
    });
    input.addEventListener("change", function () { self.writeHash(); });
    this.showDensity();
  };

  /* The slider and its read-out follow this.density. */
  AV.prototype.showDensity = function () {
    var input = this.figure.querySelector(".atlas-density input");
    var output = this.figure.querySelector(".atlas-density output");
    if (!input) return;
    var text = "×" + (this.density < 1 ? this.density.toFixed(2) : this.density.toFixed(1)).replace(/\.?0+$/, "");
    if (Math.abs(Math.pow(2, Number(input.value)) - this.density) > 1e-6) input.value = String(Math.log2(this.density));
    input.setAttribute("aria-valuetext", text);
    output.textContent = text;
  };

  /* --- cell details and dataset examples ---------------------------------------------------- */

  AV.prototype.selectCentre = function () {
    var c = this.image.viewportToImageCoordinates(this.viewer.viewport.getCenter(true));
    var cell = this.cellAt(c.x, c.y);
    if (cell) this.selectCell(cell.level.grid, cell.col, cell.row);
  };

  /* Select cell (col, row) of grid `grid`: outline it and show its details in the panel. */
  AV.prototype.selectCell = function (grid, col, row) {
    var self = this;
    var level = (this.manifest.levels || []).find(function (lv) { return lv.grid === grid; });
    if (!level || col < 0 || row < 0 || col >= grid || row >= grid) return;
    var size = AV.cellSize(level);
    this.selected = { grid: grid, col: col, row: row };
    this.outline("selected", col * size, row * size, size);
    this.figure.setAttribute("data-selected", grid + ":" + col + "," + row);
    this.writeHash();
    /* A precomputed image knows nothing more about a cell than the tooltip shows. */
    if (!(this.examplesLevelFor(level) || level.samples || this.cellsOf(level).hasTop)) return;
    var section = this.panel.querySelector(".atlas-details");
    section.textContent = "";
    var head = el("h3", "atlas-panel-title", "Cell " + col + ", " + row);
    head.appendChild(el("span", "atlas-panel-grid", " · " + AV.gridName(grid) + " grid"));
    section.appendChild(head);
    var body = el("div", "atlas-details-body");
    section.appendChild(body);
    this.reveal(section);
    var key = this.selected;
    this.ensureCells(level, [col, row, col, row]).then(function () {
      if (self.selected !== key) return;
      var meta = self.cellsOf(level);
      self.renderCell(body, level, meta.rows.get(col + "," + row), meta.failed);
      self.renderExamples(section, level, col, row);
    });
  };

  AV.prototype.renderCell = function (body, level, row, failed) {
    if (!row) {
      body.appendChild(el("p", "atlas-panel-meta", failed ? "Cell details are unavailable." :
        "No activation fell in this cell."));
      return;
    }
    if (row[2] > 0) {
      body.appendChild(el("p", "atlas-panel-meta", row[2].toLocaleString("en") +
        (row[2] === 1 ? " activation" : " activations") + " averaged"));
    }
    var top = row[3] || [], values = row[4] || [];
    if (!top.length) return;
    body.appendChild(el("h4", "atlas-panel-subtitle", "Top classes (attribution)"));
    var list = el("ol", "atlas-classes");
    var max = Math.max.apply(null, values.map(Math.abs).concat([1e-12]));
    top.forEach(function (k, i) {
      var item = el("li");
      item.appendChild(el("span", "atlas-class-name", this.label(k)));
      if (values[i] !== undefined) {
        item.appendChild(el("span", "atlas-value", AV.formatValue(values[i])));
        var bar = el("span", "atlas-bar" + (values[i] < 0 ? " atlas-bar-negative" : ""));
        bar.style.setProperty("--share", (Math.abs(values[i]) / max).toFixed(3));
        item.appendChild(bar);
      }
      list.appendChild(item);
    }, this);
    body.appendChild(list);
  };

  /* The level whose examples describe a cell of `level`: itself, else the nearest coarser. */
  AV.prototype.examplesLevelFor = function (level) {
    var levels = this.manifest.levels || [];
    for (var i = levels.indexOf(level); i >= 0; i--) if (levels[i].examples) return levels[i];
    return null;
  };

  AV.prototype.examplesIndexOf = function (level) {
    var folder = level.examples.folder;
    if (!this.examplesIndex[level.grid]) {
      this.examplesIndex[level.grid] = AV.fetchJSON(new URL(folder + "/index.json", this.base).href).then(function (doc) {
        if (doc.format !== 1) throw new Error(folder + ": unknown examples format " + doc.format);
        doc.perCell = Uint8Array.from(atob(doc.counts), function (ch) { return ch.charCodeAt(0); });
        return doc;
      });
    }
    return this.examplesIndex[level.grid];
  };

  AV.prototype.sheet = function (url) {
    if (!this.sheets[url]) {
      this.sheets[url] = new Promise(function (resolve, reject) {
        var image = new Image();
        image.onload = function () { resolve(image); };
        image.onerror = function () { reject(new Error("could not load " + url)); };
        image.src = url;
      });
    }
    return this.sheets[url];
  };

  AV.prototype.renderExamples = function (section, level, col, row) {
    var self = this;
    var source = this.examplesLevelFor(level);
    if (!source) return;
    var factor = level.grid / source.grid; /* grids double: a coarser cell holds factor^2 cells */
    var c = Math.floor(col / factor), r = Math.floor(row / factor);
    var box = el("div", "atlas-examples-box");
    box.appendChild(el("h4", "atlas-panel-subtitle", "Dataset examples"));
    var grid = el("div", "atlas-examples");
    box.appendChild(grid);
    section.appendChild(box);
    var key = this.selected;
    this.examplesIndexOf(source).then(function (index) {
      var n = index.perCell[r * index.grid + c];
      if (!n) {
        grid.replaceWith(el("p", "atlas-panel-meta", "No dataset examples are stored for this cell."));
        return null;
      }
      var b = index.block;
      var url = new URL(source.examples.folder + "/" + Math.floor(c / b) + "_" + Math.floor(r / b) + ".jpg", self.base).href;
      return self.sheet(url).then(function (sheet) {
        if (self.selected !== key) return;
        var t = index.thumb;
        var x0 = (c % b) * index.per_cell * t, y0 = (r % b) * t;
        for (var e = 0; e < n; e++) {
          var canvas = el("canvas", "atlas-example");
          canvas.width = canvas.height = t;
          canvas.setAttribute("role", "img");
          canvas.setAttribute("aria-label", "Dataset example " + (e + 1) + " of " + n);
          canvas.setAttribute("data-source", url.split("/").slice(-2).join("/") + "#" + (x0 + e * t) + "," + y0);
          canvas.getContext("2d").drawImage(sheet, x0 + e * t, y0, t, t, 0, 0, t, t);
          grid.appendChild(canvas);
        }
        var note = source === level ? "Crops of dataset images around activations in this cell (each the layer's receptive field)."
          : "From the " + AV.gridName(source.grid) + " grid's cell " + c + ", " + r + ", which contains this one.";
        box.appendChild(el("p", "atlas-panel-note", note));
      });
    }).catch(function (error) {
      grid.replaceWith(el("p", "atlas-panel-meta", "The dataset examples could not be loaded."));
      self.notice("The dataset examples of this cell could not be loaded.");
      if (window.console) console.warn("atlas viewer:", error);
    });
  };

  /* Close the panel: forget the selected cell; a heat map stays (its box can clear it). */
  AV.prototype.closePanel = function () {
    this.selected = null;
    this.hideOutline("selected");
    this.figure.removeAttribute("data-selected");
    var details = this.panel.querySelector(".atlas-details");
    details.hidden = true;
    details.textContent = "";
    var heat = this.panel.querySelector(".atlas-heat");
    heat.hidden = true;
    this.panel.hidden = true;
    this.writeHash();
  };

  AV.prototype.updatePanel = function () {
    var details = this.panel.querySelector(".atlas-details");
    var heat = this.panel.querySelector(".atlas-heat");
    this.panel.hidden = details.hidden && heat.hidden;
  };
})(window.AtlasViewer);

/* atlas-viewer-panel.js: the details panel of an atlas viewer.

   The panel (right of the stage, a bottom sheet on narrow screens) shows the selected cell
   (click, or Enter at the centre) with its count, top classes and dataset examples, and the
   heat-mapped class with a legend and its most attributed cells, which fly the view to
   themselves when clicked.

   Dataset examples come from examples-<G>/ (generator/viewerdata.py): index.json gives the
   number of thumbnails per cell, one sprite sheet holds a block of B x B cells; a grid without
   examples borrows those of the cell containing it in the nearest coarser grid.

   API (view.panel): selected ({grid, col, row} of the selected cell, or null; read only),
   isOpen(), rect(), selectCell(grid, col, row), selectCentre(), chooseClass(k, linked)
   (heat-map class k, null: none; `linked`: chosen by a linked viewer, which tints this one
   without opening its panel), closePanel(). Emits "class" (k, linked) on the view; listens to
   "grid", "heat" and "heat-broken". */

import { cellSize, el, fetchJSON, formatValue, gridName } from "./atlas-viewer-util.js";

var TOP_CELLS = 8;

export class Panel {
  constructor(view) {
    var self = this;
    this.view = view;
    this.element = view.figure.querySelector(".atlas-panel");
    this.selected = null;
    this.quiet = false; /* the heat-mapped class was chosen by a linked viewer */
    this.examplesIndex = {}; /* grid -> Promise of the decoded index.json */
    this.sheets = {}; /* url -> Promise of an Image */
    this.element.querySelector(".atlas-panel-close").addEventListener("click", function () {
      self.closePanel();
      view.viewer.canvas.focus();
    });
    this.element.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { self.closePanel(); view.viewer.canvas.focus(); }
    });
    view.on("grid", function () { self.levelChanged(); });
    view.on("heat-broken", function () { self.levelChanged(); });
    view.on("heat", function (data) { self.heatArrived(data); });
  }

  isOpen() { return !this.element.hidden; }

  rect() { return this.element.getBoundingClientRect(); }

  /* Heat-map class k (null: none): the tint, the search box, the panel's heat section. */
  chooseClass(k, linked) {
    var view = this.view, paint = view.paint;
    var valid = k !== null && k >= 0 && k < (view.manifest.labels || []).length && paint.heatAvailable();
    if (!valid) k = null;
    view.tools.showClass(k);
    if (k !== null) view.touch();
    paint.setHeatClass(k);
    /* A class chosen for this viewer by a linked one tints it without opening its panel. */
    this.quiet = !!linked;
    view.figure.setAttribute("data-class", k === null ? "" : String(k));
    var section = this.element.querySelector(".atlas-heat");
    if (k === null) {
      section.hidden = true;
      section.textContent = "";
      this.updatePanel();
    } else {
      this.renderHeat(null);
      if (!this.quiet) this.reveal(section);
      var data = paint.heatFor(paint.heatLevelFor(view.zoom.levelForZoom()));
      if (data) this.renderHeat(data);
    }
    view.emit("class", k, !!linked);
    view.writeHash();
  }

  /* Heat data arrived: list it when it is the one shown. */
  heatArrived(data) {
    var view = this.view;
    if (data.level === view.paint.heatLevelFor(view.zoom.levelForZoom())) this.renderHeat(data);
  }

  /* The grid changed (or a heat map failed): list the heat map of the grid shown. */
  levelChanged() {
    var paint = this.view.paint;
    if (paint.heatClass() !== null) {
      var data = paint.heatFor(paint.heatLevelFor(this.view.zoom.levelForZoom()));
      if (data) this.renderHeat(data);
    }
  }

  /* The heat section: class, legend, most attributed cells (data null: loading). */
  renderHeat(data) {
    var self = this, view = this.view;
    var section = this.element.querySelector(".atlas-heat");
    var k = view.paint.heatClass();
    section.textContent = "";
    var head = el("h3", "atlas-panel-title");
    head.appendChild(document.createTextNode("Attribution to "));
    head.appendChild(el("q", "", view.label(k)));
    section.appendChild(head);
    if (!data) {
      section.appendChild(el("p", "atlas-panel-meta", "Loading the heat map…"));
    } else {
      var g = data.level.grid;
      section.appendChild(el("p", "atlas-panel-meta", "Mean attribution per cell of the " + gridName(g) + " grid"));
      var legend = el("div", "atlas-legend");
      legend.setAttribute("role", "img");
      legend.setAttribute("aria-label", "Blue: negative, down to " + formatValue(-data.max) +
        "; red: positive, up to " + formatValue(data.max));
      legend.appendChild(el("span", "atlas-legend-bar"));
      var ticks = el("span", "atlas-legend-ticks");
      ticks.appendChild(el("span", "", formatValue(-data.max)));
      ticks.appendChild(el("span", "", "0"));
      ticks.appendChild(el("span", "", "+" + formatValue(data.max)));
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
        var value = el("span", "atlas-value", "+" + formatValue(data.values[flat]));
        button.appendChild(value);
        var bar = el("span", "atlas-bar");
        bar.style.setProperty("--share", (data.values[flat] / (data.max || 1)).toFixed(3));
        button.appendChild(bar);
        button.addEventListener("click", function () { self.flyToCell(data.level, col, row); });
        item.appendChild(button);
        list.appendChild(item);
      });
      section.appendChild(list);
      view.figure.setAttribute("data-heat-grid", String(g));
    }
    section.hidden = this.quiet;
    if (!this.quiet) { this.element.hidden = false; view.hover.replaceInfo(); }
  }

  /* Show a panel section and scroll the panel to it (the latest thing the reader asked for). */
  reveal(section) {
    section.hidden = false;
    this.element.hidden = false;
    this.element.scrollTop = Math.max(0, section.offsetTop - 12);
    this.view.hover.replaceInfo(); /* the tooltip keeps off the panel */
  }

  /* Move so that the cell sits in the middle with its grid shown, and select it. */
  flyToCell(level, col, row) {
    var view = this.view;
    var size = cellSize(level);
    var z = 0.75 / (level.scale || 1); /* icons at 0.75 of cell_px: this grid is shown */
    var box = view.viewer.container.getBoundingClientRect();
    var w = box.width / z, h = box.height / z;
    view.touch();
    view.fit([(col + 0.5) * size - w / 2, (row + 0.5) * size - h / 2, w, h]);
    this.selectCell(level.grid, col, row);
  }

  /* --- cell details and dataset examples ---------------------------------------------------- */

  selectCentre() {
    var view = this.view;
    var c = view.image.viewportToImageCoordinates(view.viewer.viewport.getCenter(true));
    var cell = view.hover.cellAt(c.x, c.y);
    if (cell) this.selectCell(cell.level.grid, cell.col, cell.row);
  }

  /* Select cell (col, row) of grid `grid`: outline it and show its details in the panel. */
  selectCell(grid, col, row) {
    var self = this, view = this.view;
    var level = (view.manifest.levels || []).find(function (lv) { return lv.grid === grid; });
    if (!level || col < 0 || row < 0 || col >= grid || row >= grid) return;
    var size = cellSize(level);
    this.selected = { grid: grid, col: col, row: row };
    view.hover.outline("selected", col * size, row * size, size);
    view.figure.setAttribute("data-selected", grid + ":" + col + "," + row);
    view.writeHash();
    /* A precomputed image knows nothing more about a cell than the tooltip shows. */
    if (!(this.examplesLevelFor(level) || level.samples || view.cells.of(level).hasTop)) return;
    var section = this.element.querySelector(".atlas-details");
    section.textContent = "";
    var head = el("h3", "atlas-panel-title", "Cell " + col + ", " + row);
    head.appendChild(el("span", "atlas-panel-grid", " · " + gridName(grid) + " grid"));
    section.appendChild(head);
    var body = el("div", "atlas-details-body");
    section.appendChild(body);
    this.reveal(section);
    var key = this.selected;
    view.cells.ensure(level, [col, row, col, row]).then(function () {
      if (self.selected !== key) return;
      var meta = view.cells.of(level);
      self.renderCell(body, meta.rows.get(col + "," + row), meta.failed);
      self.renderExamples(section, level, col, row);
    });
  }

  renderCell(body, row, failed) {
    var view = this.view;
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
      item.appendChild(el("span", "atlas-class-name", view.label(k)));
      if (values[i] !== undefined) {
        item.appendChild(el("span", "atlas-value", formatValue(values[i])));
        var bar = el("span", "atlas-bar" + (values[i] < 0 ? " atlas-bar-negative" : ""));
        bar.style.setProperty("--share", (Math.abs(values[i]) / max).toFixed(3));
        item.appendChild(bar);
      }
      list.appendChild(item);
    });
    body.appendChild(list);
  }

  /* The level whose examples describe a cell of `level`: itself, else the nearest coarser. */
  examplesLevelFor(level) {
    var levels = this.view.manifest.levels || [];
    for (var i = levels.indexOf(level); i >= 0; i--) if (levels[i].examples) return levels[i];
    return null;
  }

  examplesIndexOf(level) {
    var folder = level.examples.folder;
    if (!this.examplesIndex[level.grid]) {
      this.examplesIndex[level.grid] = fetchJSON(new URL(folder + "/index.json", this.view.base).href).then(function (doc) {
        if (doc.format !== 1) throw new Error(folder + ": unknown examples format " + doc.format);
        doc.perCell = Uint8Array.from(atob(doc.counts), function (ch) { return ch.charCodeAt(0); });
        return doc;
      });
    }
    return this.examplesIndex[level.grid];
  }

  sheet(url) {
    if (!this.sheets[url]) {
      this.sheets[url] = new Promise(function (resolve, reject) {
        var image = new Image();
        image.onload = function () { resolve(image); };
        image.onerror = function () { reject(new Error("could not load " + url)); };
        image.src = url;
      });
    }
    return this.sheets[url];
  }

  renderExamples(section, level, col, row) {
    var self = this, view = this.view;
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
      var url = new URL(source.examples.folder + "/" + Math.floor(c / b) + "_" + Math.floor(r / b) + ".jpg", view.base).href;
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
          : "From the " + gridName(source.grid) + " grid's cell " + c + ", " + r + ", which contains this one.";
        box.appendChild(el("p", "atlas-panel-note", note));
      });
    }).catch(function (error) {
      grid.replaceWith(el("p", "atlas-panel-meta", "The dataset examples could not be loaded."));
      view.notice("The dataset examples of this cell could not be loaded.");
      if (window.console) console.warn("atlas viewer:", error);
    });
  }

  /* Close the panel: forget the selected cell; a heat map stays (its box can clear it). */
  closePanel() {
    this.selected = null;
    this.view.hover.hideOutline("selected");
    this.view.figure.removeAttribute("data-selected");
    var details = this.element.querySelector(".atlas-details");
    details.hidden = true;
    details.textContent = "";
    var heat = this.element.querySelector(".atlas-heat");
    heat.hidden = true;
    this.element.hidden = true;
    this.view.writeHash();
  }

  updatePanel() {
    var details = this.element.querySelector(".atlas-details");
    var heat = this.element.querySelector(".atlas-heat");
    this.element.hidden = details.hidden && heat.hidden;
  }
}

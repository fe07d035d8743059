/* atlas-viewer-hover.js: the cell under the pointer (an outline and a tooltip) and clicks.

   Hovering a cell of the grid shown (view.zoom.levelForZoom()) outlines it and shows a tooltip
   beside the pointer: "Cell c, r · G × G grid", the count averaged, the top classes and their
   values (from view.cells). The tooltip is placed inside the stage and off the open details
   panel; the cell the panel shows gets none. A quick click selects the cell (view.panel).

   API (view.hover): cellAt(x, y, level), showCellAt(x, y, pointer), hideCell(),
   replaceInfo() (the panel changed under the tooltip), outline(kind, x, y, size) and
   hideOutline(kind) (the "hover" and "selected" outlines). Emits "hover" (cell, row) on the
   view, (null, null) when the pointer leaves the atlas. */

import { cellSize, formatValue, gridName } from "./atlas-viewer-util.js";

export class Hover {
  constructor(view) {
    var self = this;
    this.view = view;
    this.info = view.figure.querySelector(".atlas-cellinfo");
    this.key = null; /* "grid:col,row" of the hovered cell */
    this.at = null; /* where the tooltip was placed: {pointer, cell} */
    this.outlines = {}; /* kind -> overlay element */
    new view.OSD.MouseTracker({
      element: view.viewer.canvas,
      moveHandler: function (event) {
        if (!view.image) return;
        var p = view.pointerToImage(event.position);
        self.showCellAt(p.x, p.y, event.position);
      },
      leaveHandler: function () { self.hideCell(); }
    }).setTracking(true);
    view.viewer.addHandler("canvas-click", function (event) {
      if (!event.quick) return;
      var p = view.pointerToImage(event.position);
      var cell = self.cellAt(p.x, p.y);
      if (cell) { view.touch(); view.panel.selectCell(cell.level.grid, cell.col, cell.row); }
    });
  }

  /* The cell of the shown level at image pixel (x, y): {level, col, row} or null outside. */
  cellAt(x, y, level) {
    level = level || this.view.zoom.levelForZoom();
    if (!level) return null;
    var size = cellSize(level);
    var col = Math.floor(x / size), row = Math.floor(y / size);
    if (x < 0 || y < 0 || col >= level.grid || row >= level.grid) return null;
    return { level: level, col: col, row: row };
  }

  /* Show the cell at image pixel (x, y) (outline + tooltip), or hide both outside the atlas.
     `pointer` ({x, y} in stage px) places the tooltip; without it, it sits near the cell. */
  showCellAt(x, y, pointer) {
    var self = this, view = this.view, cells = view.cells;
    var cell = this.cellAt(x, y);
    if (!cell) { this.hideCell(); return; }
    var size = cellSize(cell.level);
    var key = cell.level.grid + ":" + cell.col + "," + cell.row;
    this.key = key;
    this.outline("hover", cell.col * size, cell.row * size, size);
    var range = [cell.col, cell.row, cell.col, cell.row];
    var show = function () {
      if (self.key !== key) return;
      var meta = cells.of(cell.level);
      var row = meta.rows.get(cell.col + "," + cell.row);
      self.describeCell(cell, row, meta.failed);
      self.placeInfo(pointer, cell);
      view.emit("hover", cell, row);
    };
    if (cells.ready(cell.level, range)) show();
    else cells.ensure(cell.level, range).then(show);
  }

  hideCell() {
    if (this.key) this.view.emit("hover", null, null);
    this.key = null;
    this.info.hidden = true;
    this.hideOutline("hover");
  }

  /* The tooltip: "Cell c, r · G × G grid", the count averaged, the top classes and values. */
  describeCell(cell, row, failed) {
    var info = this.info, view = this.view;
    var g = cell.level.grid;
    info.textContent = "";
    var head = document.createElement("p");
    var strong = document.createElement("strong");
    strong.textContent = "Cell " + cell.col + ", " + cell.row;
    head.appendChild(strong);
    var facts = " · " + gridName(g) + " grid";
    if (!row && !failed) facts += " · empty";
    head.appendChild(document.createTextNode(facts));
    info.appendChild(head);
    if (row && row[2] > 0) {
      var count = document.createElement("p");
      count.className = "atlas-cellinfo-count";
      count.textContent = row[2].toLocaleString("en") + (row[2] === 1 ? " activation" : " activations") + " averaged";
      info.appendChild(count);
    }
    var top = row ? row[3] || [] : [];
    if (top.length) {
      var list = document.createElement("ol");
      list.className = "atlas-cellinfo-classes";
      top.slice(0, 5).forEach(function (index, i) {
        var item = document.createElement("li");
        var name = document.createElement("span");
        name.textContent = view.label(index);
        item.appendChild(name);
        if (row[4] && row[4][i] !== undefined) {
          var value = document.createElement("span");
          value.className = "atlas-value";
          value.textContent = formatValue(row[4][i]);
          item.appendChild(value);
        }
        list.appendChild(item);
      });
      info.appendChild(list);
    }
    info.setAttribute("data-cell", cell.col + "," + cell.row);
    info.setAttribute("data-grid", String(g));
    info.hidden = false;
  }

  /* Put the tooltip beside the pointer (or the cell), inside the stage and off the details
     panel: below right of the pointer, else below left, above right, above left. The cell
     selected in the panel gets no tooltip (the panel tells more), nor does a pointer with no
     room beside it outside the panel. */
  placeInfo(pointer, cell) {
    var info = this.info, view = this.view, panel = view.panel;
    var s = panel.selected, open = panel.isOpen();
    this.at = { pointer: pointer, cell: cell };
    if (open && s && s.grid === cell.level.grid && s.col === cell.col && s.row === cell.row) {
      info.hidden = true;
      return;
    }
    var stage = view.stage.getBoundingClientRect();
    var at = pointer;
    if (!at) {
      var size = cellSize(cell.level);
      var p = view.imageToStage((cell.col + 1) * size, (cell.row + 1) * size);
      at = { x: p.x, y: p.y };
    }
    var box = open ? panel.rect() : null;
    var w = info.offsetWidth, h = info.offsetHeight, gap = 14, m = 8;
    var clamp = function (v, hi) { return Math.max(m, Math.min(v, hi)); };
    var xs = [at.x + gap, at.x - gap - w], ys = [at.y + gap, at.y - gap - h];
    if (xs[0] + w > stage.width - m) xs.reverse();
    if (ys[0] + h > stage.height - m) ys.reverse();
    var spots = [[xs[0], ys[0]], [xs[1], ys[0]], [xs[0], ys[1]], [xs[1], ys[1]]];
    var spot = null;
    for (var i = 0; i < spots.length && !spot; i++) {
      var x = clamp(spots[i][0], stage.width - w - m), y = clamp(spots[i][1], stage.height - h - m);
      var under = box && x < box.right - stage.left && box.left - stage.left < x + w &&
        y < box.bottom - stage.top && box.top - stage.top < y + h;
      if (!under) spot = [x, y];
    }
    info.hidden = !spot;
    if (!spot) return;
    info.style.left = spot[0] + "px";
    info.style.top = spot[1] + "px";
  }

  /* Place the shown tooltip again (the panel opened or changed under it). */
  replaceInfo() {
    if (this.at && this.key && !this.info.hidden) this.placeInfo(this.at.pointer, this.at.cell);
  }

  /* An outline overlay over an image square ("hover" or "selected"). */
  outline(kind, x, y, size) {
    var view = this.view;
    var rect = view.image.imageToViewportRectangle(x, y, size, size);
    var marker = this.outlines[kind];
    if (!marker) {
      marker = this.outlines[kind] = document.createElement("div");
      marker.className = "atlas-cell-marker atlas-cell-" + kind;
      view.viewer.addOverlay({ element: marker, location: rect, checkResize: false });
    } else {
      view.viewer.updateOverlay(marker, rect, view.OSD.Placement.TOP_LEFT);
    }
    marker.hidden = false;
    marker.style.visibility = "";
  }

  /* (OpenSeadragon sets display: block on overlays at every redraw, so the hidden attribute
     alone would not keep an outline hidden.) */
  hideOutline(kind) {
    var marker = this.outlines[kind];
    if (marker) { marker.hidden = true; marker.style.visibility = "hidden"; }
  }
}

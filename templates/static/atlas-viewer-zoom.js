/* atlas-viewer-zoom.js: semantic zoom, cell metadata and hover for atlas-viewer.js.

   The published atlas is one Deep Zoom image whose DZI levels each belong to one grid
   (viewer.json levels[i].dzi_min_level..dzi_max_level, coarse to fine). OpenSeadragon draws
   the finest DZI level L with  z * dpr * 2^(M - L) >= minPixelRatio, z = CSS px per finest
   image px, dpr = device px per CSS px, M = the top level. With minPixelRatio = 0.5 * dpr
   (kept in step with the screen below) that is z * 2^(M - L) >= 0.5: grid i is wanted from
   z = 0.5 * 2^(min_i - M), where its icons are half their cell_px wide in CSS px, and the grid
   changes at that zoom on every screen. (OpenSeadragon's default 0.5 would switch a 2x screen
   at half that zoom, with icons a quarter of cell_px wide.) On a 2x screen tiles are thus
   drawn up to 2x enlarged: the grid, not the screen, decides what is shown. An atlas of one
   grid keeps OpenSeadragon's default (sharpest tiles).

   While the wanted level's tiles load, OpenSeadragon keeps drawing the finest *complete*
   coarser level under them, so for a moment two grids would share the screen, tile by tile.
   The wrapper of getTilesToDraw below keeps one grid per frame: the grid of the coarsest
   level in the frame (after OpenSeadragon's coverage pruning that is the finest level covering
   the whole view); tiles of finer grids wait until their own level covers the view, then the
   grid changes at once. A missing tile therefore leaves the coarser grid on screen.

   Cell metadata (cells-<G>.json, or its 32 x 32-cell blocks cells-<G>/<bx>_<by>.json when
   viewer.json gives cells_block) is fetched for a level only once it is shown or wanted.
*/
(function (AV) {
  "use strict";

  var MIN_PIXEL_RATIO = 0.5; /* OpenSeadragon's default minPixelRatio */

  AV.prototype.initZoom = function (OSD) {
    var self = this;
    var levels = this.manifest.levels || [];
    this.top = levels.length ? levels[levels.length - 1].dzi_max_level : 0;
    this.owner = []; /* DZI level -> index into manifest.levels */
    levels.forEach(function (level, i) {
      for (var L = level.dzi_min_level; L <= level.dzi_max_level; L++) self.owner[L] = i;
    });
    this.meta = {}; /* grid -> cell metadata (see cellsOf) */
    this.drawn = null; /* index of the level drawn in the last frame */
    this.frames = { drawn: 0, held: 0 }; /* frames drawn; frames where a finer grid was held back */
    var image = this.image;
    var keepRatio = function () {
      /* One grid: nothing to switch, so the sharpest tiles the screen can show. */
      var ratio = MIN_PIXEL_RATIO * (levels.length > 1 ? OSD.pixelDensityRatio || 1 : 1);
      if (image.minPixelRatio !== ratio) { image.minPixelRatio = ratio; self.viewer.forceRedraw(); }
    };
    keepRatio();
    this.viewer.addHandler("resize", keepRatio); /* e.g. the window moved to another screen */
    var tilesToDraw = image.getTilesToDraw;
    image.getTilesToDraw = function () {
      return self.oneGrid(tilesToDraw.call(image));
    };
    this.viewer.addHandler("tile-load-failed", function () {
      self.notice("Some tiles of this atlas could not be loaded; a coarser grid is shown there.");
    });
    this.viewer.addHandler("tiled-image-drawn", function (event) {
      if (self.timing.firstTiles === null && event.tiles.length) self.timing.firstTiles = performance.now();
    });
  };

  /* Keep the tiles of one grid: the grid of the first (coarsest) level in the list. */
  AV.prototype.oneGrid = function (infos) {
    this.frames.drawn++;
    if (!infos.length) return infos;
    var owner = this.owner;
    var keep = owner[infos[0].level];
    var last = infos[infos.length - 1];
    if (owner[last.level] !== keep) {
      this.frames.held++;
      infos = infos.filter(function (info) { return owner[info.level] === keep; });
    }
    if (this.drawn !== keep) {
      var self = this;
      this.drawn = keep;
      this.figure.setAttribute("data-grid", String(this.manifest.levels[keep].grid));
      Promise.resolve().then(function () { self.levelChanged(); }); /* not in the middle of a draw */
    }
    return infos;
  };

  /* Screen (CSS) px per finest-level image px; current or target zoom. */
  AV.prototype.imageZoom = function (current) {
    return this.image.viewportToImageZoom(this.viewer.viewport.getZoom(current));
  };

  /* Index of the level OpenSeadragon wants at image zoom z (see the comment at the top). */
  AV.prototype.wantedIndex = function (z) {
    var L = Math.min(this.top, Math.floor(this.top + Math.log2(z / MIN_PIXEL_RATIO) + 1e-9));
    return this.owner[Math.max(0, L)] || 0;
  };

  /* The level whose cells the reader sees: the one drawn, else the one wanted. The plug-in
     point of semantic zoom for hover, metadata, labels, density and heat maps. */
  AV.prototype.levelForZoom = function () {
    var levels = this.manifest.levels || [];
    var index = this.drawn !== null ? this.drawn : this.wantedIndex(this.imageZoom(true));
    return levels[index];
  };
  AV.prototype.shownLevel = AV.prototype.levelForZoom;

  /* Finest image px per cell of a level. */
  AV.cellSize = function (level) { return level.cell_px * (level.scale || 1); };

  /* Zoom about the centre so that `grid` is shown (icons at 0.7 of their cell_px), unless it
     already is wanted. Used by the hash: the same grid on a screen of another shape. */
  AV.prototype.showGrid = function (grid, immediately) {
    var levels = this.manifest.levels || [];
    var index = levels.findIndex(function (level) { return level.grid === grid; });
    if (index < 0 || this.wantedIndex(this.imageZoom(false)) === index) return;
    var z = 0.7 / (levels[index].scale || 1);
    var vp = this.viewer.viewport;
    vp.zoomTo(this.image.imageToViewportZoom(z), null, immediately || AV.reducedMotion());
    vp.applyConstraints(immediately || AV.reducedMotion());
  };

  /* --- cell metadata ------------------------------------------------------------------------ */

  /* The metadata record of a level: rows by "col,row", which parts are loaded, failures. */
  AV.prototype.cellsOf = function (level) {
    var meta = this.meta[level.grid];
    if (!meta) {
      meta = this.meta[level.grid] = {
        rows: new Map(), parts: {}, block: level.cells_block || 0, failed: false,
        hasTop: false, total: 0
      };
    }
    return meta;
  };

  /* The parts (whole document, or blocks) covering cells c0..c1 x r0..r1 of a level. */
  function partsFor(meta, level, range) {
    if (!meta.block) return [""];
    var out = [];
    var b = meta.block;
    for (var by = Math.floor(range[1] / b); by <= Math.floor(range[3] / b); by++) {
      for (var bx = Math.floor(range[0] / b); bx <= Math.floor(range[2] / b); bx++) out.push(bx + "_" + by);
    }
    return out;
  }

  /* Load the metadata of a level's cells in range [c0, r0, c1, r1] (inclusive); resolves when
     every part has arrived or failed. A failure shows a notice once and leaves the rows out. */
  AV.prototype.ensureCells = function (level, range) {
    var self = this;
    var meta = this.cellsOf(level);
    var jobs = partsFor(meta, level, range).map(function (part) {
      if (!meta.parts[part]) {
        var name = part ? level.cells.replace(/\.json$/, "") + "/" + part + ".json" : level.cells;
        meta.parts[part] = AV.fetchJSON(new URL(name, self.base).href).then(function (doc) {
          doc.cells.forEach(function (row) {
            meta.rows.set(row[0] + "," + row[1], row);
            meta.total += row[2] || 0;
            if (row[3] && row[3].length) meta.hasTop = true;
          });
          meta.parts[part] = true;
          self.metadataChanged(level);
        }, function (error) {
          meta.failed = true;
          meta.parts[part] = "failed";
          self.notice("Cell details are unavailable for the " + AV.gridName(level.grid) +
            " grid (its metadata could not be loaded).");
          if (window.console) console.warn("atlas viewer:", error);
        });
      }
      return meta.parts[part];
    });
    return Promise.all(jobs.map(function (job) { return job === true || job === "failed" ? null : job; }));
  };

  /* Whether the metadata of cells in range has arrived (failed parts count as arrived). */
  AV.prototype.cellsReady = function (level, range) {
    var meta = this.cellsOf(level);
    return partsFor(meta, level, range).every(function (part) {
      return meta.parts[part] === true || meta.parts[part] === "failed";
    });
  };

  /* The cells of a level on screen (inclusive range, clamped to the grid), or null. */
  AV.prototype.visibleRange = function (level, current) {
    var r = this.image.viewportToImageRectangle(this.viewer.viewport.getBounds(current));
    var size = AV.cellSize(level);
    var g = level.grid;
    var c0 = Math.max(0, Math.floor(r.x / size)), r0 = Math.max(0, Math.floor(r.y / size));
    var c1 = Math.min(g - 1, Math.floor((r.x + r.width) / size));
    var r1 = Math.min(g - 1, Math.floor((r.y + r.height) / size));
    return c0 > c1 || r0 > r1 ? null : [c0, r0, c1, r1];
  };

  /* Fetch what the shown and the wanted level need on screen (called every frame; cheap). */
  AV.prototype.requestMetadata = function () {
    var levels = this.manifest.levels || [];
    var shown = this.levelForZoom();
    var wanted = levels[this.wantedIndex(this.imageZoom(false))];
    var self = this;
    [shown, wanted].forEach(function (level, i) {
      if (!level || (i === 1 && level === shown)) return;
      var range = self.visibleRange(level, i === 0);
      if (range) self.ensureCells(level, range);
    });
  };

  /* Hooks for the other modules: repaint when metadata arrives. */
  AV.prototype.metadataChanged = function () {
    this.viewer.forceRedraw();
    this.refreshTools();
  };

  /* --- hover ---------------------------------------------------------------------------------- */

  /* The cell of the shown level at image pixel (x, y): {level, col, row} or null outside. */
  AV.prototype.cellAt = function (x, y, level) {
    level = level || this.levelForZoom();
    if (!level) return null;
    var size = AV.cellSize(level);
    var col = Math.floor(x / size), row = Math.floor(y / size);
    if (x < 0 || y < 0 || col >= level.grid || row >= level.grid) return null;
    return { level: level, col: col, row: row };
  };

  /* Show the cell at image pixel (x, y) (outline + tooltip), or hide both outside the atlas.
     `pointer` ({x, y} in stage px) places the tooltip; without it, it sits near the cell. */
  AV.prototype.showCellAt = function (x, y, pointer) {
    var self = this;
    var cell = this.cellAt(x, y);
    if (!cell) { this.hideCell(); return; }
    var size = AV.cellSize(cell.level);
    var key = cell.level.grid + ":" + cell.col + "," + cell.row;
    this.hoverKey = key;
    this.outline("hover", cell.col * size, cell.row * size, size);
    var range = [cell.col, cell.row, cell.col, cell.row];
    var show = function () {
      if (self.hoverKey !== key) return;
      var meta = self.cellsOf(cell.level);
      var row = meta.rows.get(cell.col + "," + cell.row);
      self.describeCell(cell, row, meta.failed);
      self.placeInfo(pointer, cell);
      if (self.cellShown) self.cellShown(cell, row); /* linked viewers (atlas-viewer-linked.js) */
    };
    if (this.cellsReady(cell.level, range)) show();
    else this.ensureCells(cell.level, range).then(show);
  };

  /* Class name of index i. */
  AV.prototype.label = function (i) {
    var labels = this.manifest.labels || [];
    return labels[i] !== undefined ? labels[i] : "class " + i;
  };

  /* "40 × 40" (no line break inside). */
  AV.gridName = function (g) { return g + "\u00a0×\u00a0" + g; };

  function formatValue(v) {
    var a = Math.abs(v);
    return a >= 100 || a === 0 ? String(Math.round(v)) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
  }
  AV.formatValue = formatValue;

  /* The tooltip: "Cell c, r · G × G grid", the count averaged, the top classes and values. */
  AV.prototype.describeCell = function (cell, row, failed) {
    var info = this.figure.querySelector(".atlas-cellinfo");
    var g = cell.level.grid;
    info.textContent = "";
    var head = document.createElement("p");
    var strong = document.createElement("strong");
    strong.textContent = "Cell " + cell.col + ", " + cell.row;
    head.appendChild(strong);
    var facts = " · " + AV.gridName(g) + " grid";
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
        name.textContent = this.label(index);
        item.appendChild(name);
        if (row[4] && row[4][i] !== undefined) {
          var value = document.createElement("span");
          value.className = "atlas-value";
          value.textContent = formatValue(row[4][i]);
          item.appendChild(value);
        }
        list.appendChild(item);
      }, this);
      info.appendChild(list);
    }
    info.setAttribute("data-cell", cell.col + "," + cell.row);
    info.setAttribute("data-grid", String(g));
    info.hidden = false;
  };

  /* Put the tooltip beside the pointer (or the cell), inside the stage and off the details
     panel: below right of the pointer, else below left, above right, above left. The cell
     selected in the panel gets no tooltip (the panel tells more), nor does a pointer with no
     room beside it outside the panel. */
  AV.prototype.placeInfo = function (pointer, cell) {
    var info = this.figure.querySelector(".atlas-cellinfo");
    var s = this.selected, open = this.panel && !this.panel.hidden;
    this.infoAt = { pointer: pointer, cell: cell };
    if (open && s && s.grid === cell.level.grid && s.col === cell.col && s.row === cell.row) {
      info.hidden = true;
      return;
    }
    var stage = this.stage.getBoundingClientRect();
    var at = pointer;
    if (!at) {
      var size = AV.cellSize(cell.level);
      var p = this.imageToStage((cell.col + 1) * size, (cell.row + 1) * size);
      at = { x: p.x, y: p.y };
    }
    var panel = open ? this.panel.getBoundingClientRect() : null;
    var w = info.offsetWidth, h = info.offsetHeight, gap = 14, m = 8;
    var clamp = function (v, hi) { return Math.max(m, Math.min(v, hi)); };
    var xs = [at.x + gap, at.x - gap - w], ys = [at.y + gap, at.y - gap - h];
    if (xs[0] + w > stage.width - m) xs.reverse();
    if (ys[0] + h > stage.height - m) ys.reverse();
    var spots = [[xs[0], ys[0]], [xs[1], ys[0]], [xs[0], ys[1]], [xs[1], ys[1]]];
    var spot = null;
    for (var i = 0; i < spots.length && !spot; i++) {
      var x = clamp(spots[i][0], stage.width - w - m), y = clamp(spots[i][1], stage.height - h - m);
      var under = panel && x < panel.right - stage.left && panel.left - stage.left < x + w &&
        y < panel.bottom - stage.top && panel.top - stage.top < y + h;
      if (!under) spot = [x, y];
    }
    info.hidden = !spot;
    if (!spot) return;
    info.style.left = spot[0] + "px";
    info.style.top = spot[1] + "px";
  };

  /* Place the shown tooltip again (the panel opened or changed under it). */
  AV.prototype.replaceInfo = function () {
    var info = this.figure.querySelector(".atlas-cellinfo");
    if (this.infoAt && this.hoverKey && !info.hidden) this.placeInfo(this.infoAt.pointer, this.infoAt.cell);
  };

  /* Image px -> stage (CSS) px. OpenSeadragon's pixelFromPoint applies the rotation (a half
     turn for flip "xy"/"y") but not the mirror of a flipped viewport, which it draws. */
  AV.prototype.imageToStage = function (x, y) {
    var vp = this.viewer.viewport;
    var p = vp.pixelFromPoint(this.image.imageToViewportCoordinates(x, y), true);
    if (vp.getFlip()) p.x = vp.getContainerSize().x - p.x;
    return p;
  };

  /* An outline overlay over an image square ("hover" or "selected"). */
  AV.prototype.outline = function (kind, x, y, size) {
    var OSD = window.OpenSeadragon;
    this.outlines = this.outlines || {};
    var rect = this.image.imageToViewportRectangle(x, y, size, size);
    var marker = this.outlines[kind];
    if (!marker) {
      marker = this.outlines[kind] = document.createElement("div");
      marker.className = "atlas-cell-marker atlas-cell-" + kind;
      this.viewer.addOverlay({ element: marker, location: rect, checkResize: false });
    } else {
      this.viewer.updateOverlay(marker, rect, OSD.Placement.TOP_LEFT);
    }
    marker.hidden = false;
    marker.style.visibility = "";
  };

  /* (OpenSeadragon sets display: block on overlays at every redraw, so the hidden attribute
     alone would not keep an outline hidden.) */
  AV.prototype.hideOutline = function (kind) {
    var marker = this.outlines && this.outlines[kind];
    if (marker) { marker.hidden = true; marker.style.visibility = "hidden"; }
  };

  AV.prototype.hideCell = function () {
    if (this.hoverKey && this.cellShown) this.cellShown(null, null);
    this.hoverKey = null;
    this.figure.querySelector(".atlas-cellinfo").hidden = true;
    this.hideOutline("hover");
  };

  AV.prototype.pointerToImage = function (pixel) {
    var vp = this.viewer.viewport;
    if (vp.getFlip()) pixel = new window.OpenSeadragon.Point(vp.getContainerSize().x - pixel.x, pixel.y);
    var point = vp.pointFromPixel(pixel);
    return this.image.viewportToImageCoordinates(point);
  };
})(window.AtlasViewer);

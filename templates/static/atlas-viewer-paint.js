/* atlas-viewer-paint.js: the density control, class heat maps and top-class labels.

   Icons are baked into the tiles, so all three are painted onto OpenSeadragon's 2D canvas right
   after each frame is drawn (atlas-viewer-osd.js afterEachFrame), in screen space, for the grid
   that frame shows (view.zoom.levelForZoom()):

   - density (METHOD.md 4, the article's slider): a cell's icon edge is its cell edge times
     min(1, sqrt(density * n / avgSamples)), avgSamples = samples / G^2 (viewer.json
     levels[i].samples). The frame is copied once to a scratch canvas, each shrunken cell is
     cleared to the atlas background and its icon drawn back scaled about its centre. Screen
     space works at every DZI level and across tile seams (a cell may straddle four tiles).
   - heat map of a class: cells with little attribution are washed out towards the background,
     attributed ones tinted red for positive and blue for negative values (a translucent fill:
     the icon stays visible), in proportion to |value| / max |value| at that grid. Values come
     from heatmap-<G>/ (int8 per class, see generator/viewerdata.py); a grid without one
     borrows the nearest coarser grid's.
   - labels: at coarse zoom (the grid the home view shows, or a coarser one), the top class of
     cells on small pills, placed greedily (most samples first) where they do not overlap
     another label or repeat a nearby one; none once the reader zooms into finer grids.

   API (view.paint): density, setDensity(d), labelsOn, setLabels(on), heatClass(),
   setHeatClass(k), heatAvailable(), heatLevelFor(level), heatFor(level), densityAvailable(),
   background, coveredRects(dpr), addPainter(name, painter) (more marks after the labels:
   painter(ctx, geo, level, range) returns what it painted, kept in painted[name]), painted
   (what the last frame painted, for tests: {density, heat, labels, ...}). Emits "density"
   when the density changes, "heat" (data) when a heat map arrives, "heat-broken" (level)
   when one fails. */

import * as osd from "./atlas-viewer-osd.js";
import { cellSize, fetchJSON, gridName, parseColour, rgba } from "./atlas-viewer-util.js";

var DENSITY_MIN = 0.2, DENSITY_MAX = 8; /* the article's slider range */
var POSITIVE = [202, 60, 50], NEGATIVE = [40, 110, 190];
var MAX_LABELS = 60;

export class Painter {
  constructor(view) {
    var self = this;
    this.view = view;
    this.density = 1;
    this.labelsOn = true;
    this.heat = { klass: null, grids: {} }; /* grids: grid -> {data} of this class */
    this.heatIndex = {}; /* grid -> Promise of the decoded index.json */
    this.heatChunks = {}; /* url -> Promise of an ArrayBuffer */
    this.heatBroken = {}; /* grid -> true once its heat map failed to load */
    this.painters = []; /* [name, painter] added by other modules */
    this.scratch = document.createElement("canvas");
    this.background = parseColour(view.manifest.background || "#ffffff");
    this.painted = { density: 0, heat: 0, labels: [] };
    osd.afterEachFrame(view.viewer, function (ctx) { self.paint(ctx); });
  }

  addPainter(name, painter) { this.painters.push([name, painter]); }

  /* Where image px land on the drawer's canvas: canvas px = o + s * k * image px (s = -1 on a
     flipped axis); corner(col, row, size) is the top left of a displayed cell of `size` px. */
  geometry() {
    var view = this.view;
    var dpr = view.OSD.pixelDensityRatio || 1;
    var origin = view.imageToStage(0, 0);
    var sx = view.flip.x ? -1 : 1, sy = view.flip.y ? -1 : 1;
    var geo = { k: view.zoom.imageZoom(true) * dpr, ox: origin.x * dpr, oy: origin.y * dpr, dpr: dpr, sx: sx, sy: sy };
    geo.corner = function (col, row, size) {
      return [geo.ox + sx * (col + (sx < 0 ? 1 : 0)) * size, geo.oy + sy * (row + (sy < 0 ? 1 : 0)) * size];
    };
    return geo;
  }

  paint(ctx) {
    var view = this.view;
    if (!view.image) return;
    view.cells.request();
    var level = view.zoom.levelForZoom();
    var range = level && view.zoom.visibleRange(level, true);
    this.painted = { density: 0, heat: 0, labels: [] };
    if (!range) return;
    var geo = this.geometry();
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    try {
      this.paintDensity(ctx, geo, level, range);
      this.paintHeat(ctx, geo, level);
      this.paintLabels(ctx, geo, level, range);
      for (var i = 0; i < this.painters.length; i++) {
        this.painted[this.painters[i][0]] = this.painters[i][1](ctx, geo, level, range);
      }
    } finally {
      ctx.restore();
    }
  }

  /* --- density --------------------------------------------------------------------------------- */

  /* The average samples per cell of a level (samples / G^2), or 0 when counts are unknown. */
  averageSamples(level) {
    var total = level.samples || 0;
    return total > 0 ? total / (level.grid * level.grid) : 0;
  }

  densityAvailable() {
    return (this.view.manifest.levels || []).some(function (level) { return level.samples > 0; });
  }

  /* Scale of a cell's icon: min(1, sqrt(density * n / avgSamples)). */
  iconScale(level, count) {
    var avg = this.averageSamples(level);
    return avg > 0 ? Math.min(1, Math.sqrt(this.density * count / avg)) : 1;
  }

  setDensity(value) {
    var d = Math.min(DENSITY_MAX, Math.max(DENSITY_MIN, Number(value) || 1));
    if (d === this.density) return;
    this.density = d;
    this.view.emit("density");
    this.view.viewer.forceRedraw();
  }

  paintDensity(ctx, geo, level, range) {
    var cells = this.view.cells;
    if (!(this.averageSamples(level) > 0) || !cells.ready(level, range)) return;
    var rows = cells.of(level).rows;
    var size = cellSize(level) * geo.k;
    var shrunk = [];
    for (var row = range[1]; row <= range[3]; row++) {
      for (var col = range[0]; col <= range[2]; col++) {
        var cell = rows.get(col + "," + row);
        if (!cell) continue;
        var s = this.iconScale(level, cell[2]);
        if (s < 0.999) shrunk.push([col, row, s]);
      }
    }
    if (!shrunk.length) return;
    var canvas = ctx.canvas, scratch = this.scratch;
    if (scratch.width !== canvas.width || scratch.height !== canvas.height) {
      scratch.width = canvas.width;
      scratch.height = canvas.height;
    }
    var copy = scratch.getContext("2d");
    copy.clearRect(0, 0, scratch.width, scratch.height);
    copy.drawImage(canvas, 0, 0);
    ctx.fillStyle = rgba(this.background, 1);
    shrunk.forEach(function (item) {
      var at = geo.corner(item[0], item[1], size), x = at[0], y = at[1];
      var x0 = Math.floor(x), y0 = Math.floor(y);
      ctx.fillRect(x0, y0, Math.ceil(x + size) - x0, Math.ceil(y + size) - y0);
      var edge = size * item[2];
      if (edge >= 0.5) {
        ctx.drawImage(scratch, x, y, size, size, x + (size - edge) / 2, y + (size - edge) / 2, edge, edge);
      }
    });
    this.painted.density = shrunk.length;
  }

  /* --- heat maps ------------------------------------------------------------------------------ */

  heatAvailable() {
    return (this.view.manifest.levels || []).some(function (level) { return !!level.heatmap; });
  }

  /* The heat-mapped class (null: none). */
  heatClass() { return this.heat.klass; }

  /* The level whose heat map tints `level`: itself, else the nearest coarser one with a map
     (a map that failed to load counts as absent). */
  heatLevelFor(level) {
    var levels = this.view.manifest.levels || [];
    for (var i = levels.indexOf(level); i >= 0; i--) {
      if (levels[i].heatmap && !this.heatBroken[levels[i].grid]) return levels[i];
    }
    return null;
  }

  /* Decoded index of a level's heat maps: {grid, chunk, classes, cells, order: Int32Array of
     the flat cell index (row * G + col) of each value, row-major}. */
  heatIndexOf(level) {
    var folder = level.heatmap.folder;
    var base = this.view.base;
    if (!this.heatIndex[level.grid]) {
      this.heatIndex[level.grid] = fetchJSON(new URL(folder + "/index.json", base).href).then(function (doc) {
        if (doc.format !== 1) throw new Error(folder + ": unknown heat-map format " + doc.format);
        var bits = Uint8Array.from(atob(doc.mask), function (ch) { return ch.charCodeAt(0); });
        var order = new Int32Array(doc.cells);
        var m = 0;
        for (var i = 0; i < doc.grid * doc.grid && m < doc.cells; i++) {
          if ((bits[i >> 3] >> (i & 7)) & 1) order[m++] = i;
        }
        doc.order = order;
        return doc;
      });
    }
    return this.heatIndex[level.grid];
  }

  /* The attribution of every cell of a level to class k: {values: Float32Array(G*G) (NaN: no
     value), max: max |value|, level}. One request for the chunk holding k (plus the index). */
  heatValues(level, k) {
    var self = this;
    var folder = level.heatmap.folder;
    return this.heatIndexOf(level).then(function (index) {
      var chunk = Math.floor(k / index.chunk);
      var url = new URL(folder + "/" + chunk + ".bin", self.view.base).href;
      if (!self.heatChunks[url]) {
        self.heatChunks[url] = fetch(url).then(function (response) {
          if (!response.ok) throw new Error(url + ": HTTP " + response.status);
          return response.arrayBuffer();
        });
      }
      return self.heatChunks[url].then(function (buffer) {
        var count = Math.min(index.chunk, index.classes - chunk * index.chunk);
        var local = k - chunk * index.chunk;
        var scale = new DataView(buffer).getFloat32(4 * local, true);
        var q = new Int8Array(buffer, 4 * count + local * index.cells, index.cells);
        var values = new Float32Array(index.grid * index.grid).fill(NaN);
        var max = 0;
        for (var m = 0; m < index.cells; m++) {
          var v = q[m] * scale;
          values[index.order[m]] = v;
          if (Math.abs(v) > max) max = Math.abs(v);
        }
        return { values: values, max: max, level: level, klass: k };
      });
    });
  }

  /* Tint by class k (null: no heat map). */
  setHeatClass(k) {
    this.heat = { klass: k, grids: {} };
    this.view.viewer.forceRedraw();
  }

  /* The heat data of the current class for `level` if it has arrived; starts loading it. */
  heatFor(level) {
    var self = this, view = this.view, heat = this.heat;
    if (heat.klass === null || !level) return null;
    var entry = heat.grids[level.grid];
    if (!entry) {
      entry = heat.grids[level.grid] = { data: null };
      this.heatValues(level, heat.klass).then(function (data) {
        if (self.heat !== heat) return;
        entry.data = data;
        view.viewer.forceRedraw();
        view.emit("heat", data);
      }, function (error) {
        self.heatBroken[level.grid] = true; /* a coarser grid's map tints this one from now on */
        view.viewer.forceRedraw();
        view.emit("heat-broken", level);
        view.notice("The heat map of “" + view.label(heat.klass) + "” could not be loaded at the " +
          gridName(level.grid) + " grid.");
        if (window.console) console.warn("atlas viewer:", error);
      });
    }
    return entry.data;
  }

  paintHeat(ctx, geo, shown) {
    var level = this.heatLevelFor(shown);
    var data = this.heatFor(level);
    if (!data) return;
    var range = this.view.zoom.visibleRange(level, true);
    if (!range) return;
    var size = cellSize(level) * geo.k;
    var g = level.grid, bg = this.background, max = data.max || 1;
    var tinted = 0;
    for (var row = range[1]; row <= range[3]; row++) {
      for (var col = range[0]; col <= range[2]; col++) {
        var v = data.values[row * g + col];
        var t = v === v ? Math.min(1, Math.abs(v) / max) : 0; /* v === v: not NaN */
        var at = geo.corner(col, row, size), x = at[0], y = at[1];
        ctx.fillStyle = rgba(bg, (0.8 * (1 - t)).toFixed(3));
        ctx.fillRect(x, y, size, size);
        if (t > 0.02) {
          ctx.fillStyle = rgba(v > 0 ? POSITIVE : NEGATIVE, (0.15 + 0.5 * t).toFixed(3));
          ctx.fillRect(x, y, size, size);
          tinted++;
        }
      }
    }
    this.painted.heat = tinted;
  }

  /* --- labels --------------------------------------------------------------------------------- */

  /* Canvas rectangles [x0, y0, x1, y1] hidden by the stage's floating parts. */
  coveredRects(dpr) {
    var origin = this.view.viewer.canvas.getBoundingClientRect();
    var parts = this.view.stage.querySelectorAll(".atlas-tools, .atlas-controls, .atlas-panel, .navigator");
    var out = [];
    Array.prototype.forEach.call(parts, function (part) {
      var r = part.getBoundingClientRect();
      if (!r.width || !r.height) return; /* hidden */
      out.push([(r.left - origin.left) * dpr, (r.top - origin.top) * dpr,
        (r.right - origin.left) * dpr, (r.bottom - origin.top) * dpr]);
    });
    return out;
  }

  setLabels(on) {
    this.labelsOn = !!on;
    this.view.viewer.forceRedraw();
  }

  paintLabels(ctx, geo, level, range) {
    var view = this.view;
    var levels = view.manifest.levels || [];
    if (!this.labelsOn || levels.indexOf(level) > view.zoom.homeIndex()) return;
    if (!view.cells.ready(level, range)) return;
    var meta = view.cells.of(level);
    var size = cellSize(level) * geo.k;
    if (!meta.hasTop || size / geo.dpr < 12) return;
    var candidates = [];
    meta.rows.forEach(function (row) {
      if (row[0] < range[0] || row[0] > range[2] || row[1] < range[1] || row[1] > range[3]) return;
      if (row[3] && row[3].length) candidates.push(row);
    });
    candidates.sort(function (a, b) { return b[2] - a[2] || (b[4] ? b[4][0] : 0) - (a[4] ? a[4][0] : 0); });
    var dpr = geo.dpr, pad = 5 * dpr, height = 18 * dpr, spacing = 4 * size;
    ctx.font = "600 " + 11.5 * dpr + "px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    var blocked = this.coveredRects(geo.dpr); /* tools, buttons, panel, navigator */
    var placed = [];
    for (var i = 0; i < candidates.length && placed.length < MAX_LABELS; i++) {
      var row = candidates[i];
      var text = view.label(row[3][0]);
      var w = ctx.measureText(text).width + 2 * pad;
      var at = geo.corner(row[0], row[1], size), cx = at[0] + size / 2, cy = at[1] + size / 2;
      var box = [cx - w / 2, cy - height / 2, cx + w / 2, cy + height / 2];
      var hidden = blocked.some(function (r) {
        return box[0] < r[2] && r[0] < box[2] && box[1] < r[3] && r[1] < box[3];
      });
      var clash = hidden || placed.some(function (p) {
        var gap = 3 * dpr;
        var overlap = box[0] < p.box[2] + gap && p.box[0] < box[2] + gap &&
          box[1] < p.box[3] + gap && p.box[1] < box[3] + gap;
        return overlap || (p.text === text && Math.hypot(p.x - cx, p.y - cy) < spacing);
      });
      if (!clash) placed.push({ box: box, text: text, x: cx, y: cy, cell: [row[0], row[1]] });
    }
    placed.forEach(function (p) {
      var b = p.box, r = (b[3] - b[1]) / 2;
      ctx.beginPath();
      ctx.moveTo(b[0] + r, b[1]);
      ctx.arcTo(b[2], b[1], b[2], b[3], r);
      ctx.arcTo(b[2], b[3], b[0], b[3], r);
      ctx.arcTo(b[0], b[3], b[0], b[1], r);
      ctx.arcTo(b[0], b[1], b[2], b[1], r);
      ctx.closePath();
      ctx.fillStyle = "rgba(255,255,255,0.86)";
      ctx.fill();
      ctx.strokeStyle = "rgba(0,0,0,0.14)";
      ctx.lineWidth = dpr;
      ctx.stroke();
      ctx.fillStyle = "#1d1d1f";
      ctx.fillText(p.text, p.x, p.y + 0.5 * dpr);
    });
    this.painted.labels = placed.map(function (p) { return { text: p.text, cell: p.cell }; });
  }
}

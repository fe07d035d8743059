/* atlas-viewer-cells.js: the cell metadata of each grid, fetched as the reader needs it.

   cells-<G>.json (or its 32 x 32-cell blocks cells-<G>/<bx>_<by>.json when viewer.json gives
   cells_block) holds rows [col, row, count, [top classes], [their values]]. A level's
   metadata is fetched only once that level is shown or wanted at the current zoom, and only
   the blocks on screen. A part that fails shows a notice once and leaves its rows out.

   API (view.cells): of(level) -> {rows: Map "col,row" -> row, failed, hasTop, total},
   ensure(level, range) -> Promise (every part covering the range arrived or failed),
   ready(level, range), hasTop(level), request() (every frame: what the shown and the wanted
   level need on screen). Emits "metadata" (level) on the view when rows arrive. */

import { fetchJSON, gridName } from "./atlas-viewer-util.js";

export class CellData {
  constructor(view) {
    this.view = view;
    this.meta = {}; /* grid -> the record of of() */
  }

  /* The metadata record of a level: rows by "col,row", which parts are loaded, failures. */
  of(level) {
    var meta = this.meta[level.grid];
    if (!meta) {
      meta = this.meta[level.grid] = {
        rows: new Map(), parts: {}, block: level.cells_block || 0, failed: false,
        hasTop: false, total: 0
      };
    }
    return meta;
  }

  /* Load the metadata of a level's cells in range [c0, r0, c1, r1] (inclusive); resolves when
     every part has arrived or failed. */
  ensure(level, range) {
    var view = this.view;
    var meta = this.of(level);
    var jobs = partsFor(meta, range).map(function (part) {
      if (!meta.parts[part]) {
        var name = part ? level.cells.replace(/\.json$/, "") + "/" + part + ".json" : level.cells;
        meta.parts[part] = fetchJSON(new URL(name, view.base).href).then(function (doc) {
          doc.cells.forEach(function (row) {
            meta.rows.set(row[0] + "," + row[1], row);
            meta.total += row[2] || 0;
            if (row[3] && row[3].length) meta.hasTop = true;
          });
          meta.parts[part] = true;
          view.emit("metadata", level);
        }, function (error) {
          meta.failed = true;
          meta.parts[part] = "failed";
          view.notice("Cell details are unavailable for the " + gridName(level.grid) +
            " grid (its metadata could not be loaded).");
          if (window.console) console.warn("atlas viewer:", error);
        });
      }
      return meta.parts[part];
    });
    return Promise.all(jobs.map(function (job) { return job === true || job === "failed" ? null : job; }));
  }

  /* Whether some metadata of a level has arrived with top classes (without fetching any). */
  hasTop(level) {
    var meta = this.meta[level.grid];
    return !!(meta && meta.hasTop);
  }

  /* Whether the metadata of cells in range has arrived (failed parts count as arrived). */
  ready(level, range) {
    var meta = this.of(level);
    return partsFor(meta, range).every(function (part) {
      return meta.parts[part] === true || meta.parts[part] === "failed";
    });
  }

  /* Fetch what the shown and the wanted level need on screen (called every frame; cheap). */
  request() {
    var zoom = this.view.zoom, levels = this.view.manifest.levels || [];
    var shown = zoom.levelForZoom();
    var wanted = levels[zoom.wantedIndex(zoom.imageZoom(false))];
    var self = this;
    [shown, wanted].forEach(function (level, i) {
      if (!level || (i === 1 && level === shown)) return;
      var range = zoom.visibleRange(level, i === 0);
      if (range) self.ensure(level, range);
    });
  }
}

/* The parts (whole document, or blocks) covering cells c0..c1 x r0..r1 of a level. */
function partsFor(meta, range) {
  if (!meta.block) return [""];
  var out = [];
  var b = meta.block;
  for (var by = Math.floor(range[1] / b); by <= Math.floor(range[3] / b); by++) {
    for (var bx = Math.floor(range[0] / b); bx <= Math.floor(range[2] / b); bx++) out.push(bx + "_" + by);
  }
  return out;
}

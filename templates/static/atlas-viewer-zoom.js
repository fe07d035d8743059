/* atlas-viewer-zoom.js: semantic zoom, one grid drawn at a time.

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
   oneGrid() (given the tiles of each frame by the adapter, atlas-viewer-osd.js keepOneGrid)
   keeps one grid per frame: the grid of the coarsest level in the frame (after OpenSeadragon's
   coverage pruning that is the finest level covering the whole view); tiles of finer grids
   wait until their own level covers the view, then the grid changes at once. A missing tile
   therefore leaves the coarser grid on screen.

   API (view.zoom): levelForZoom() (the grid the reader sees; everything cell-related goes
   through it), wantedIndex(z), imageZoom(current), homeIndex(), visibleRange(level, current),
   showGrid(grid, immediately), frames ({drawn, held}: frames drawn, frames where a finer grid
   was held back). Emits "grid" on the view when the grid drawn changes. */

import * as osd from "./atlas-viewer-osd.js";
import { cellSize, reducedMotion } from "./atlas-viewer-util.js";

var MIN_PIXEL_RATIO = 0.5; /* OpenSeadragon's default minPixelRatio */

export class SemanticZoom {
  constructor(view) {
    var self = this;
    var levels = view.manifest.levels || [];
    this.view = view;
    this.levels = levels;
    this.top = levels.length ? levels[levels.length - 1].dzi_max_level : 0;
    this.owner = []; /* DZI level -> index into manifest.levels */
    levels.forEach(function (level, i) {
      for (var L = level.dzi_min_level; L <= level.dzi_max_level; L++) self.owner[L] = i;
    });
    this.drawn = null; /* index of the level drawn in the last frame */
    this.frames = { drawn: 0, held: 0 };
    var viewer = view.viewer, image = view.image;
    var keepRatio = function () {
      /* One grid: nothing to switch, so the sharpest tiles the screen can show. */
      osd.setMinPixelRatio(viewer, image, levelPixelRatio(view.OSD, levels));
    };
    keepRatio();
    viewer.addHandler("resize", keepRatio); /* e.g. the window moved to another screen */
    osd.keepOneGrid(image, function (infos) { return self.oneGrid(infos); });
    viewer.addHandler("tile-load-failed", function () {
      view.notice("Some tiles of this atlas could not be loaded; a coarser grid is shown there.");
    });
    viewer.addHandler("tiled-image-drawn", function (event) {
      if (view.timing.firstTiles === null && event.tiles.length) view.timing.firstTiles = performance.now();
    });
  }

  /* Keep the tiles of one grid: the grid of the first (coarsest) level in the list. */
  oneGrid(infos) {
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
      var view = this.view;
      this.drawn = keep;
      view.figure.setAttribute("data-grid", String(this.levels[keep].grid));
      Promise.resolve().then(function () { view.emit("grid"); }); /* not in the middle of a draw */
    }
    return infos;
  }

  /* Screen (CSS) px per finest-level image px; current or target zoom. */
  imageZoom(current) {
    return this.view.image.viewportToImageZoom(this.view.viewer.viewport.getZoom(current));
  }

  /* Index of the level OpenSeadragon wants at image zoom z (see the comment at the top). */
  wantedIndex(z) {
    var L = Math.min(this.top, Math.floor(this.top + Math.log2(z / MIN_PIXEL_RATIO) + 1e-9));
    return this.owner[Math.max(0, L)] || 0;
  }

  /* The level whose cells the reader sees: the one drawn, else the one wanted. The plug-in
     point of semantic zoom for hover, metadata, labels, density and heat maps. */
  levelForZoom() {
    var index = this.drawn !== null ? this.drawn : this.wantedIndex(this.imageZoom(true));
    return this.levels[index];
  }

  /* Index of the level the home view shows (the coarsest grids are the ones labelled). */
  homeIndex() {
    var view = this.view;
    return this.wantedIndex(view.image.viewportToImageZoom(view.viewer.viewport.getHomeZoom()));
  }

  /* Zoom about the centre so that `grid` is shown (icons at 0.7 of their cell_px), unless it
     already is wanted. Used by the hash: the same grid on a screen of another shape. */
  showGrid(grid, immediately) {
    var index = this.levels.findIndex(function (level) { return level.grid === grid; });
    if (index < 0 || this.wantedIndex(this.imageZoom(false)) === index) return;
    var z = 0.7 / (this.levels[index].scale || 1);
    var vp = this.view.viewer.viewport;
    vp.zoomTo(this.view.image.imageToViewportZoom(z), null, immediately || reducedMotion());
    vp.applyConstraints(immediately || reducedMotion());
  }

  /* The cells of a level on screen (inclusive range [c0, r0, c1, r1], clamped to the grid),
     or null; current or target view. */
  visibleRange(level, current) {
    var view = this.view;
    var r = view.image.viewportToImageRectangle(view.viewer.viewport.getBounds(current));
    var size = cellSize(level);
    var g = level.grid;
    var c0 = Math.max(0, Math.floor(r.x / size)), r0 = Math.max(0, Math.floor(r.y / size));
    var c1 = Math.min(g - 1, Math.floor((r.x + r.width) / size));
    var r1 = Math.min(g - 1, Math.floor((r.y + r.height) / size));
    return c0 > c1 || r0 > r1 ? null : [c0, r0, c1, r1];
  }
}

/* The minPixelRatio that makes levels change at the same zoom in CSS px on every screen. */
export function levelPixelRatio(OSD, levels) {
  return MIN_PIXEL_RATIO * (levels.length > 1 ? OSD.pixelDensityRatio || 1 : 1);
}

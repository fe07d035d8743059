/* atlas-viewer-view.js: one figure's atlas viewer (AtlasViewer) and the code it loads.

   An AtlasViewer is made for every figure when the page loads (atlas-viewer.js); it starts
   when its figure nears the viewport: OpenSeadragon (checked by the adapter,
   atlas-viewer-osd.js), the viewer's parts and the manifest (viewer.json) load in parallel,
   then the Deep Zoom image opens (described inline from the manifest: no .dzi request).

   The state the parts share is this object's, and only what is listed here:
     figure, id, config, stage, status   the figure's elements and its configuration
     flip {x, y}                          axis flips (display only, see below)
     touched                              the reader moved the view: from then on it is kept
                                          in the hash (parts call touch())
     timing {start, open, firstTiles}     performance.now() of each (tests)
     OSD, viewer, image                   OpenSeadragon, its Viewer and the TiledImage (public
                                          API only; internals go through atlas-viewer-osd.js)
     manifest, base                       viewer.json and its URL (relative URLs resolve to it)
     home                                 the figure's initial view [x, y, w, h]
   and its parts, each a module holding its own state, reached by name:
     zoom (atlas-viewer-zoom.js)     semantic zoom: the grid shown, one grid per frame
     cells (atlas-viewer-cells.js)   cell metadata, fetched as needed
     paint (atlas-viewer-paint.js)   density, heat maps and labels painted on the canvas
     hover (atlas-viewer-hover.js)   the cell under the pointer: outline, tooltip, click
     tools (atlas-viewer-tools.js)   class search, density slider, labels switch
     panel (atlas-viewer-panel.js)   the details panel: selected cell, examples, heat map
     tour (atlas-viewer-tour.js)     the tour: stops, step list, highlights and arrows
     linked (atlas-viewer-linked.js) viewers side by side (only in a layers figure)
     axes (atlas-viewer-axes.js)     a comparison's axis labels (or null)
   A part calls another's API (listed at the top of its module) and tells the others what
   happened through events on this object: on(name, handler), emit(name, ...arguments):
     "grid"         the grid drawn changed (zoom)
     "metadata"     cell metadata of a level arrived (cells)
     "density"      the icon density changed (paint)
     "heat"         a heat map arrived (paint; its data)
     "heat-broken"  a heat map failed to load (paint; its level)
     "hover"        the cell under the pointer (hover; cell and row, or null and null)
     "class"        the heat-mapped class was chosen (panel; k, and whether a linked viewer
                    chose it)
   This file: opening, the figure's keys and buttons, full screen, the hash entry, failure.

   Axis flips ("flip", layers figures): display only. "x" mirrors the picture left-right
   (OpenSeadragon's viewport flip), "xy" turns it 180 degrees, "y" is both (a flip and a half
   turn mirror it top-bottom). Every rectangle, cell and hash value stays in the atlas's own,
   unflipped image pixels: fitBounds of a rectangle shows the same cells, mirrored;
   imageToStage() and pointerToImage() apply the flip. */

import { numbers, readHash, writeHash } from "./atlas-viewer-hash.js";
import { fetchJSON, reducedMotion } from "./atlas-viewer-util.js";

var coarse = window.matchMedia ? window.matchMedia("(pointer: coarse)") : null;
var loading = null;

/* OpenSeadragon and the viewer's parts, once per page (the page imports them only once it has
   an atlas figure). */
export function loadCode(openseadragonUrl) {
  if (!loading) {
    loading = Promise.all([
      import("./atlas-viewer-osd.js").then(function (osd) {
        return osd.loadOpenSeadragon(openseadragonUrl).then(function (OSD) { return { osd: osd, OSD: OSD }; });
      }),
      import("./atlas-viewer-zoom.js"),
      import("./atlas-viewer-cells.js"),
      import("./atlas-viewer-paint.js"),
      import("./atlas-viewer-hover.js"),
      import("./atlas-viewer-tools.js"),
      import("./atlas-viewer-panel.js"),
      import("./atlas-viewer-tour.js"),
      import("./atlas-viewer-linked.js"),
      import("./atlas-viewer-axes.js")
    ]).then(function (m) {
      return {
        osd: m[0].osd, OSD: m[0].OSD, zoom: m[1], cells: m[2], paint: m[3], hover: m[4],
        tools: m[5], panel: m[6], tour: m[7], linked: m[8], axes: m[9]
      };
    });
  }
  return loading;
}

/* The Deep Zoom image as an inline tile source: one request less before the first tile. */
function tileSource(manifest, manifestUrl) {
  return {
    Image: {
      xmlns: "http://schemas.microsoft.com/deepzoom/2008",
      Url: new URL(manifest.dzi.replace(/\.dzi$/, "_files/"), manifestUrl).href,
      Format: manifest.format,
      Overlap: String(manifest.overlap),
      TileSize: String(manifest.tile_size),
      Size: { Width: String(manifest.width), Height: String(manifest.height) }
    }
  };
}

export class AtlasViewer {
  /* `assets`: {openseadragon: the script's URL, images: its button images' folder URL}. */
  constructor(figure, assets) {
    this.figure = figure;
    this.id = figure.id;
    this.config = JSON.parse(figure.querySelector("script.atlas-config").textContent);
    this.stage = figure.querySelector(".atlas-stage");
    this.status = figure.querySelector(".atlas-status");
    var flip = this.config.flip || "";
    this.flip = { x: flip.indexOf("x") >= 0, y: flip.indexOf("y") >= 0 };
    this.assets = assets;
    this.ready = null;
    this.touched = false;
    this.timing = { start: performance.now(), open: null, firstTiles: null };
    this.handlers = {}; /* event name -> [handler] */
    this.noticeTimer = null;
    this.OSD = this.viewer = this.image = this.manifest = this.base = this.home = null;
    this.zoom = this.cells = this.paint = this.hover = this.tools = this.panel = null;
    this.tour = this.linked = this.axes = null;
  }

  on(name, handler) { (this.handlers[name] = this.handlers[name] || []).push(handler); }

  emit(name, ...args) {
    (this.handlers[name] || []).forEach(function (handler) { handler(...args); });
  }

  /* The reader moved or chose something: the view is kept in the hash from now on. */
  touch() { this.touched = true; }

  start() {
    var self = this;
    if (this.ready) return this.ready;
    var manifestUrl = new URL(this.config.manifest, document.baseURI).href;
    this.figure.setAttribute("data-state", "loading");
    this.ready = Promise.all([loadCode(this.assets.openseadragon), fetchJSON(manifestUrl)])
      .then(function (results) { return self.open(results[0], results[1], manifestUrl); })
      .catch(function (error) { self.fail(error); throw error; });
    return this.ready;
  }

  /* Make the OpenSeadragon viewer, then (once its image is open) the parts. */
  open(code, manifest, manifestUrl) {
    var self = this, OSD = code.OSD;
    this.OSD = OSD;
    this.manifest = manifest;
    this.base = manifestUrl;
    this.axes = code.axes.makeAxes(this); /* first: the viewer measures the space left */
    this.viewer = code.osd.createViewer(OSD, {
      element: this.stage.querySelector(".atlas-osd"),
      prefixUrl: this.assets.images,
      tileSources: tileSource(manifest, manifestUrl),
      /* (The adapter always asks for the 2D canvas drawer: the density control and heat maps
         repaint its canvas after each frame; the WebGL drawer exposes no such canvas.) */
      showNavigationControl: false,
      showNavigator: true,
      navigatorPosition: "BOTTOM_LEFT",
      navigatorSizeRatio: 0.16,
      navigatorAutoFade: false,
      navigatorBackground: window.getComputedStyle(this.stage).backgroundColor,
      visibilityRatio: 0.6,
      constrainDuringPan: true,
      maxZoomPixelRatio: 8, /* icons stay legible far past 1:1; tours may zoom close */
      animationTime: reducedMotion() ? 0 : 0.9,
      springStiffness: reducedMotion() ? 100 : 7,
      /* A new grid replaces the old one at once, never cross-faded (see atlas-viewer-zoom.js
         for how frames with two grids are avoided while tiles load). immediateRender stays
         off: in OpenSeadragon 6 it only reorders tile loading. */
      blendTime: 0,
      immediateRender: false,
      /* Levels are chosen in CSS px, so the grid changes at the same zoom on every screen
         (OpenSeadragon counts device px; atlas-viewer-zoom.js keeps this in step). */
      minPixelRatio: code.zoom.levelPixelRatio(OSD, manifest.levels || []),
      /* On touch screens one finger scrolls the page and two fingers move the atlas. */
      cooperativeGestures: !!(coarse && coarse.matches),
      gestureSettingsMouse: { clickToZoom: false },
      gestureSettingsTouch: { clickToZoom: false },
      crossOriginPolicy: false,
      /* Axis flips (see the top): x = a mirror, xy = a half turn, y = both. */
      flipped: this.flip.x !== this.flip.y,
      degrees: this.flip.y ? 180 : 0
    });
    var canvas = this.viewer.canvas;
    canvas.setAttribute("role", "application");
    canvas.setAttribute("aria-roledescription", "zoomable atlas");
    canvas.setAttribute("aria-label", manifest.title || this.config.atlas);
    canvas.setAttribute("aria-describedby", this.config.help || this.id + "-help");
    return new Promise(function (resolve, reject) {
      self.viewer.addOnceHandler("open", function () {
        self.image = self.viewer.world.getItemAt(0);
        self.timing.open = performance.now();
        self.on("metadata", function () { self.viewer.forceRedraw(); });
        self.zoom = new code.zoom.SemanticZoom(self);
        self.cells = new code.cells.CellData(self);
        self.paint = new code.paint.Painter(self);
        self.hover = new code.hover.Hover(self);
        self.tools = new code.tools.Tools(self);
        self.panel = new code.panel.Panel(self);
        self.home = self.config.view || [0, 0, manifest.width, manifest.height];
        self.tour = new code.tour.Tour(self);
        self.wireControls();
        if (self.config.group) self.linked = new code.linked.Linked(self);
        if (!self.applyHash(readHash()[self.id] || {}, true)) self.fit(self.home, true);
        self.status.textContent = "";
        self.status.hidden = true;
        self.figure.setAttribute("data-state", "ready");
        self.image.whenFullyLoaded(function () { self.figure.setAttribute("data-loaded", "true"); });
        resolve(self);
      });
      self.viewer.addOnceHandler("open-failed", function (event) {
        reject(new Error(event.message || "could not open the atlas"));
      });
    });
  }

  /* The static image instead, and why. Another OpenSeadragon than the adapter's
     (a VersionMismatch) is named in the figure and on the console. */
  fail(error) {
    var mismatch = !!error && error.name === "VersionMismatch";
    this.figure.setAttribute("data-state", "error");
    this.figure.classList.add("atlas-failed");
    this.status.textContent = mismatch
      ? "The interactive atlas could not be loaded: it needs OpenSeadragon " + error.expected +
        ", but this page loaded OpenSeadragon " + error.found + ". Showing a static image."
      : "The interactive atlas could not be loaded; showing a static image.";
    if (mismatch) this.figure.setAttribute("data-error", "openseadragon-version");
    var print = this.figure.querySelector(".atlas-print");
    if (print && !print.src) print.src = print.getAttribute("data-src");
    if (!window.console) return;
    if (mismatch) console.error("atlas viewer: " + error.message);
    else console.error("atlas viewer:", error);
  }

  /* A small, unobtrusive message at the bottom of the stage (missing data, hints). */
  notice(text) {
    var note = this.figure.querySelector(".atlas-notice");
    if (!note || note.textContent === text) return;
    note.textContent = text;
    note.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(function () { note.hidden = true; note.textContent = ""; }, 8000);
  }

  /* Class name of index i. */
  label(i) {
    var labels = this.manifest.labels || [];
    return labels[i] !== undefined ? labels[i] : "class " + i;
  }

  /* Move to an image rectangle [x, y, w, h] (pixels of the finest level). */
  fit(rect, immediately) {
    var r = this.image.imageToViewportRectangle(rect[0], rect[1], rect[2], rect[3]);
    this.viewer.viewport.fitBounds(r, immediately || reducedMotion());
  }

  /* The visible image rectangle [x, y, w, h] (the target of the current animation). */
  visibleRect() {
    var r = this.image.viewportToImageRectangle(this.viewer.viewport.getBounds());
    return [r.x, r.y, r.width, r.height];
  }

  /* Image px -> stage (CSS) px. OpenSeadragon's pixelFromPoint applies the rotation (a half
     turn for flip "xy"/"y") but not the mirror of a flipped viewport, which it draws. */
  imageToStage(x, y) {
    var vp = this.viewer.viewport;
    var p = vp.pixelFromPoint(this.image.imageToViewportCoordinates(x, y), true);
    if (vp.getFlip()) p.x = vp.getContainerSize().x - p.x;
    return p;
  }

  /* Stage (CSS) px of a pointer -> image px. */
  pointerToImage(pixel) {
    var vp = this.viewer.viewport;
    if (vp.getFlip()) pixel = new this.OSD.Point(vp.getContainerSize().x - pixel.x, pixel.y);
    return this.image.viewportToImageCoordinates(vp.pointFromPixel(pixel));
  }

  wireControls() {
    var self = this, viewer = this.viewer, tour = this.tour;
    /* Keyboard (the canvas has focus): one step per key press, so a tap always moves visibly
       (OpenSeadragon's own keys move continuously while held); 0/Home returns to the figure's
       view; n/p step through the tour; Enter shows the centre cell's details; Escape closes
       them. After a keyboard move the info shows the centre cell. */
    var steps = {
      ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1],
      a: [-1, 0], d: [1, 0], w: [0, -1], s: [0, 1]
    };
    viewer.addHandler("canvas-key", function (event) {
      var e = event.originalEvent;
      var key = e.key;
      if (e.ctrlKey || e.altKey || e.metaKey) return;
      var vp = viewer.viewport;
      var moved = true; /* free moves are constrained; tour stops are shown as authored */
      var arrow = key === "ArrowRight" ? 1 : key === "ArrowLeft" ? -1 : 0;
      var zoom = key === "+" || key === "=" ? 1.5 : key === "-" || key === "_" ? 1 / 1.5 : 0;
      if (key === "0" || key === "Home") { tour.go(-1); moved = false; }
      else if ((key === "n" || key === "p") && tour.stops.length) { tour.step(key === "n" ? 1 : -1); moved = false; }
      else if (arrow && tour.touring) { tour.step(arrow); moved = false; } /* a tour: arrows step */
      else if (zoom || steps[key]) {
        tour.leave(); /* a free move: the tour stays where it is */
        if (zoom) vp.zoomBy(zoom, null, reducedMotion());
        else {
          var b = vp.getBounds();
          var sx = self.flip.x ? -1 : 1, sy = self.flip.y ? -1 : 1; /* as the picture moves */
          vp.panBy(new self.OSD.Point(sx * steps[key][0] * b.width * 0.15, sy * steps[key][1] * b.height * 0.15), reducedMotion());
        }
      } else if (key === "Enter") { self.panel.selectCentre(); moved = false; }
      else if (key === "Escape") { self.panel.closePanel(); moved = false; }
      else return;
      self.touch();
      event.preventDefaultAction = true;
      e.preventDefault();
      if (moved) vp.applyConstraints(reducedMotion());
      self.writeHash(); /* the target view (no animation-finish follows a move without motion) */
    });
    viewer.addHandler("canvas-press", function () { self.touch(); });
    viewer.addHandler("canvas-scroll", function () { self.touch(); });
    viewer.addHandler("canvas-pinch", function () { self.touch(); });
    viewer.addHandler("animation-finish", function () {
      self.writeHash();
      if (document.activeElement !== viewer.canvas || !self.image) return;
      var c = self.image.viewportToImageCoordinates(viewer.viewport.getCenter(true));
      self.hover.showCellAt(c.x, c.y);
    });
    this.figure.querySelectorAll(".atlas-controls button").forEach(function (button) {
      button.addEventListener("click", function () {
        var action = button.getAttribute("data-action");
        var now = reducedMotion();
        self.touch();
        if (action === "zoom-in" || action === "zoom-out") tour.leave();
        if (action === "zoom-in") viewer.viewport.zoomBy(1.5, null, now);
        else if (action === "zoom-out") viewer.viewport.zoomBy(1 / 1.5, null, now);
        else if (action === "reset") tour.go(-1);
        else if (action === "fullscreen") self.toggleFullscreen();
        if (action === "zoom-in" || action === "zoom-out") viewer.viewport.applyConstraints(now);
        if (now) self.writeHash(); /* no animation, so no animation-finish */
      });
    });
  }

  /* Full screen for the stage (viewer, tools and panel); Esc or the button leaves it. */
  toggleFullscreen() {
    if (document.fullscreenElement === this.stage) document.exitFullscreen();
    else if (this.stage.requestFullscreen) this.stage.requestFullscreen();
  }

  /* --- the view in the URL hash (atlas-viewer-hash.js) ---------------------------------------- */

  /* Show what a hash entry describes; returns whether it held a view. */
  applyHash(entry, immediately) {
    var step = Number(entry.step);
    if (step >= 1 && step <= this.tour.stops.length) { this.tour.goStep(step - 1, immediately); return true; }
    var rect = numbers(entry.xywh, 4);
    if (rect && rect[2] > 0 && rect[3] > 0) {
      this.fit(rect, immediately);
      this.tour.leave(); /* a view, not a stop: explore freely from there */
      var grid = Number(entry.level);
      if (grid) this.zoom.showGrid(grid, immediately); /* the same grid on a screen of another shape */
    }
    var density = Number(entry.density);
    if (density > 0) this.paint.setDensity(density);
    if (entry["class"] !== undefined && entry["class"] !== "") this.panel.chooseClass(Number(entry["class"]));
    var cell = /^(\d+):(\d+),(\d+)$/.exec(entry.cell || "");
    if (cell) this.panel.selectCell(Number(cell[1]), Number(cell[2]), Number(cell[3]));
    return !!rect;
  }

  /* This viewer's state as hash pairs (after the reader moved it). */
  hashPairs() {
    if (this.tour.touring) return [this.id + ".step=" + (this.tour.stop + 1)];
    var r = this.visibleRect().map(function (v) { return Math.round(v); });
    var pairs = ["xywh=" + r.join(",")];
    var level = this.zoom.levelForZoom();
    if (level) pairs.push("level=" + level.grid);
    var klass = this.paint.heatClass(), selected = this.panel.selected, density = this.paint.density;
    if (klass !== null) pairs.push("class=" + klass);
    if (selected) pairs.push("cell=" + selected.grid + ":" + selected.col + "," + selected.row);
    if (density !== 1) pairs.push("density=" + Number(density.toFixed(2)));
    var id = this.id;
    return pairs.map(function (pair) { return id + "." + pair; });
  }

  writeHash() {
    if (this.touched && this.image) writeHash();
  }

  /* --- for tests and the author mode (window.atlasViewers[id]) -------------------------------- */

  get painted() { return this.paint && this.paint.painted; }
  get frames() { return this.zoom && this.zoom.frames; }
  get density() { return this.paint ? this.paint.density : 1; }
  get labelsOn() { return this.paint ? this.paint.labelsOn : true; }
  selectCell(grid, col, row) { this.panel.selectCell(grid, col, row); }
  selectCentre() { this.panel.selectCentre(); }
}

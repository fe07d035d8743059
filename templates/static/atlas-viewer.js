/* atlas-viewer.js: the interactive atlas figures of a page, on OpenSeadragon (the core).

   Each <figure class="atlas-figure"> carries its configuration in a
   <script type="application/json" class="atlas-config"> (written by the build):
     {"atlas": id, "manifest": "../atlases/<id>/viewer.json", "view": [x,y,w,h] | null,
      "tour": [{"rect": [x,y,w,h], "caption": "<p>html</p>", ...}, ...], "scroll": false,
      "flip": null | "x" | "y" | "xy", "group": null | "<figure id of a layers figure>"}
   Rectangles are in the finest level's image pixels. A viewer starts when its figure nears the
   viewport: OpenSeadragon, the viewer's other modules and the manifest (viewer.json) load in
   parallel, then the Deep Zoom image opens (described inline from the manifest: no .dzi
   request). This file: loading, text links <a class="atlas-link" data-atlas-figure
   data-atlas-rect>, keys and buttons, full screen, axis flips, and the view in the URL hash.
   The modules:
     atlas-viewer-zoom.js   semantic zoom (one grid drawn at a time), cell metadata, hover
     atlas-viewer-paint.js  the density control, class heat maps and labels, drawn on the canvas
     atlas-viewer-panel.js  the tools (class search, density, labels), cell details, examples
     atlas-viewer-tour.js   the tour: stops, step list, highlights and arrows, scroll-driven tours
     atlas-viewer-linked.js viewers side by side whose hover and class choice are linked
     atlas-viewer-axes.js   the axis labels of a two-class comparison
   Each module adds methods to window.AtlasViewer.prototype. window.atlasViewers maps figure ids
   to viewers (for tests and authors).

   The URL hash holds each viewer's view as "&"-separated <figure>.<key>=<value> pairs, e.g.
     #fig.xywh=800,800,1600,1600&fig.level=40&fig.class=207&fig.cell=40:3,4&fig.density=2
   (xywh: the visible image rectangle; level: the grid shown; class: the heat-mapped class;
   cell: the selected cell, <grid>:<col>,<row>; density: the icon density), or #fig.step=3
   while a tour is on (1-based). Pairs of other figures and anything else in the hash are kept.

   Axis flips ("flip", layers figures): display only. "x" mirrors the picture left-right
   (OpenSeadragon's viewport flip), "xy" turns it 180 degrees, "y" is both (a flip and a half
   turn mirror it top-bottom). Every rectangle, cell and hash value stays in the atlas's own,
   unflipped image pixels: fitBounds of a rectangle shows the same cells, mirrored.
*/
(function () {
  "use strict";

  var script = document.currentScript;
  var OSD_URL = script.getAttribute("data-openseadragon");
  var OSD_IMAGES = script.getAttribute("data-openseadragon-images");
  /* The modules and a digest of each (checked by tests/browser/test_viewer_assets.py): the
     query string changes exactly when the file does, so browsers never mix versions. */
  var MODULES = {
    "atlas-viewer-zoom.js": "7de7739c",
    "atlas-viewer-paint.js": "8b7f4150",
    "atlas-viewer-panel.js": "d076de0d",
    "atlas-viewer-tour.js": "ada50008",
    "atlas-viewer-linked.js": "fc35f43b",
    "atlas-viewer-axes.js": "f033935b"
  };
  var motion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;
  var coarse = window.matchMedia ? window.matchMedia("(pointer: coarse)") : null;
  var viewers = {};
  var loading = null;

  function reducedMotion() { return !!(motion && motion.matches); }

  function loadScript(url) {
    return new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = url;
      tag.onload = resolve;
      tag.onerror = function () { reject(new Error("could not load " + url)); };
      document.head.appendChild(tag);
    });
  }

  /* OpenSeadragon and the modules, once per page. */
  function loadCode() {
    if (!loading) {
      var jobs = [window.OpenSeadragon ? Promise.resolve() : loadScript(OSD_URL)];
      Object.keys(MODULES).forEach(function (name) {
        jobs.push(loadScript(new URL(name + "?v=" + MODULES[name], script.src).href));
      });
      loading = Promise.all(jobs).then(function () { return window.OpenSeadragon; });
    }
    return loading;
  }

  function fetchJSON(url) {
    return fetch(url).then(function (response) {
      if (!response.ok) throw new Error(url + ": HTTP " + response.status);
      return response.json();
    });
  }

  /* One figure's viewer. */
  function AtlasViewer(figure) {
    this.figure = figure;
    this.id = figure.id;
    this.config = JSON.parse(figure.querySelector("script.atlas-config").textContent);
    this.stage = figure.querySelector(".atlas-stage");
    this.status = figure.querySelector(".atlas-status");
    this.tour = this.config.tour || [];
    this.stop = -1; /* -1: the initial view ("overview"); 0..n-1: tour stops */
    var flip = this.config.flip || "";
    this.flip = { x: flip.indexOf("x") >= 0, y: flip.indexOf("y") >= 0 };
    this.ready = null;
    this.touched = false; /* the reader moved the view: from then on it is kept in the hash */
    this.timing = { start: performance.now(), open: null, firstTiles: null };
  }

  AtlasViewer.prototype.start = function () {
    var self = this;
    if (this.ready) return this.ready;
    var manifestUrl = new URL(this.config.manifest, document.baseURI).href;
    this.figure.setAttribute("data-state", "loading");
    this.ready = Promise.all([loadCode(), fetchJSON(manifestUrl)])
      .then(function (results) { return self.open(results[0], results[1], manifestUrl); })
      .catch(function (error) { self.fail(error); throw error; });
    return this.ready;
  };

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

  AtlasViewer.prototype.open = function (OSD, manifest, manifestUrl) {
    var self = this;
    this.manifest = manifest;
    this.base = manifestUrl;
    this.initAxes(OSD); /* a comparison's axis strip first: the viewer measures the space left */
    this.viewer = OSD({
      element: this.stage.querySelector(".atlas-osd"),
      prefixUrl: OSD_IMAGES,
      tileSources: tileSource(manifest, manifestUrl),
      /* The 2D canvas drawer: the density control and heat maps repaint its canvas after each
         frame (atlas-viewer-paint.js); the WebGL drawer exposes no such canvas. */
      drawer: "canvas",
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
      minPixelRatio: 0.5 * ((manifest.levels || []).length > 1 ? OSD.pixelDensityRatio || 1 : 1),
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
        self.initZoom(OSD);
        self.initPaint(OSD);
        self.initPanel(OSD);
        self.home = self.config.view || [0, 0, manifest.width, manifest.height];
        self.initTour(OSD);
        self.wireControls(OSD);
        if (self.initLinked) self.initLinked(OSD);
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
  };

  AtlasViewer.prototype.fail = function (error) {
    this.figure.setAttribute("data-state", "error");
    this.figure.classList.add("atlas-failed");
    this.status.textContent = "The interactive atlas could not be loaded; showing a static image.";
    var print = this.figure.querySelector(".atlas-print");
    if (print && !print.src) print.src = print.getAttribute("data-src");
    if (window.console) console.error("atlas viewer:", error);
  };

  /* A small, unobtrusive message at the bottom of the stage (missing data, hints). */
  AtlasViewer.prototype.notice = function (text) {
    var note = this.figure.querySelector(".atlas-notice");
    if (!note || note.textContent === text) return;
    note.textContent = text;
    note.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(function () { note.hidden = true; note.textContent = ""; }, 8000);
  };

  /* Move to an image rectangle [x, y, w, h] (pixels of the finest level). */
  AtlasViewer.prototype.fit = function (rect, immediately) {
    var r = this.image.imageToViewportRectangle(rect[0], rect[1], rect[2], rect[3]);
    this.viewer.viewport.fitBounds(r, immediately || reducedMotion());
  };

  /* The visible image rectangle [x, y, w, h] (the target of the current animation). */
  AtlasViewer.prototype.visibleRect = function () {
    var r = this.image.viewportToImageRectangle(this.viewer.viewport.getBounds());
    return [r.x, r.y, r.width, r.height];
  };

  AtlasViewer.prototype.wireControls = function (OSD) {
    var self = this;
    var viewer = this.viewer;
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
      if (key === "0" || key === "Home") { self.go(-1); moved = false; }
      else if ((key === "n" || key === "p") && self.tour.length) { self.step(key === "n" ? 1 : -1); moved = false; }
      else if (arrow && self.touring) { self.step(arrow); moved = false; } /* a tour: arrows step */
      else if (zoom || steps[key]) {
        self.leaveTour(); /* a free move: the tour stays where it is */
        if (zoom) vp.zoomBy(zoom, null, reducedMotion());
        else {
          var b = vp.getBounds();
          var sx = self.flip.x ? -1 : 1, sy = self.flip.y ? -1 : 1; /* as the picture moves */
          vp.panBy(new OSD.Point(sx * steps[key][0] * b.width * 0.15, sy * steps[key][1] * b.height * 0.15), reducedMotion());
        }
      } else if (key === "Enter") { self.selectCentre(); moved = false; }
      else if (key === "Escape") { self.closePanel(); moved = false; }
      else return;
      self.touched = true;
      event.preventDefaultAction = true;
      e.preventDefault();
      if (moved) vp.applyConstraints(reducedMotion());
      self.writeHash(); /* the target view (no animation-finish follows a move without motion) */
    });
    viewer.addHandler("canvas-press", function () { self.touched = true; });
    viewer.addHandler("canvas-scroll", function () { self.touched = true; });
    viewer.addHandler("canvas-pinch", function () { self.touched = true; });
    viewer.addHandler("animation-finish", function () {
      self.writeHash();
      if (document.activeElement !== viewer.canvas || !self.image) return;
      var c = self.image.viewportToImageCoordinates(viewer.viewport.getCenter(true));
      self.showCellAt(c.x, c.y);
    });
    this.figure.querySelectorAll(".atlas-controls button").forEach(function (button) {
      button.addEventListener("click", function () {
        var action = button.getAttribute("data-action");
        var now = reducedMotion();
        self.touched = true;
        if (action === "zoom-in" || action === "zoom-out") self.leaveTour();
        if (action === "zoom-in") viewer.viewport.zoomBy(1.5, null, now);
        else if (action === "zoom-out") viewer.viewport.zoomBy(1 / 1.5, null, now);
        else if (action === "reset") self.go(-1);
        else if (action === "fullscreen") self.toggleFullscreen();
        if (action === "zoom-in" || action === "zoom-out") viewer.viewport.applyConstraints(now);
        if (now) self.writeHash(); /* no animation, so no animation-finish */
      });
    });
  };

  /* Full screen for the stage (viewer, tools and panel); Esc or the button leaves it. */
  AtlasViewer.prototype.toggleFullscreen = function () {
    if (document.fullscreenElement === this.stage) document.exitFullscreen();
    else if (this.stage.requestFullscreen) this.stage.requestFullscreen();
  };

  /* --- the view in the URL hash ------------------------------------------------------------ */

  /* {figure: {key: value}} from location.hash, plus the foreign parts kept verbatim. */
  function readHash() {
    var out = {};
    var foreign = [];
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var match = /^([A-Za-z][A-Za-z0-9_-]*)\.([a-z]+)=([^&]*)$/.exec(part);
      if (match && viewers[match[1]]) {
        (out[match[1]] = out[match[1]] || {})[match[2]] = decodeURIComponent(match[3]);
      } else if (part) {
        foreign.push(part);
      }
    });
    Object.defineProperty(out, "foreign", { value: foreign });
    return out;
  }

  function numbers(text, count) {
    var values = String(text || "").split(",").map(Number);
    return values.length === count && values.every(isFinite) ? values : null;
  }

  /* Show what a hash entry describes; returns whether it held a view. */
  AtlasViewer.prototype.applyHash = function (entry, immediately) {
    var step = Number(entry.step);
    if (step >= 1 && step <= this.tour.length) { this.goStep(step - 1, immediately); return true; }
    var rect = numbers(entry.xywh, 4);
    if (rect && rect[2] > 0 && rect[3] > 0) {
      this.fit(rect, immediately);
      this.leaveTour(); /* a view, not a stop: explore freely from there */
      var grid = Number(entry.level);
      if (grid) this.showGrid(grid, immediately); /* the same grid on a screen of another shape */
    }
    var density = Number(entry.density);
    if (density > 0) this.setDensity(density);
    if (entry["class"] !== undefined && entry["class"] !== "") this.chooseClass(Number(entry["class"]));
    var cell = /^(\d+):(\d+),(\d+)$/.exec(entry.cell || "");
    if (cell) this.selectCell(Number(cell[1]), Number(cell[2]), Number(cell[3]));
    return !!rect;
  };

  /* This viewer's state as hash pairs (after the reader moved it). */
  AtlasViewer.prototype.hashPairs = function () {
    if (this.touring) return [this.id + ".step=" + (this.stop + 1)];
    var r = this.visibleRect().map(function (v) { return Math.round(v); });
    var pairs = ["xywh=" + r.join(",")];
    var level = this.shownLevel();
    if (level) pairs.push("level=" + level.grid);
    if (this.heat && this.heat.klass !== null) pairs.push("class=" + this.heat.klass);
    if (this.selected) pairs.push("cell=" + this.selected.grid + ":" + this.selected.col + "," + this.selected.row);
    if (this.density !== 1) pairs.push("density=" + Number(this.density.toFixed(2)));
    var id = this.id;
    return pairs.map(function (pair) { return id + "." + pair; });
  };

  AtlasViewer.prototype.writeHash = function () {
    if (!this.touched || !this.image || !history.replaceState) return;
    var state = readHash();
    /* Keep foreign pairs, but not a plain anchor ("#references"): once the reader has moved
       an atlas the hash is about views, and "#anchor&fig.xywh=..." would match no element. */
    var parts = state.foreign.filter(function (part) { return !/^[A-Za-z][\w-]*$/.test(part); });
    Object.keys(viewers).forEach(function (id) {
      var v = viewers[id];
      if (v.touched && v.image) parts = parts.concat(v.hashPairs());
      else if (state[id]) {
        Object.keys(state[id]).forEach(function (key) { parts.push(id + "." + key + "=" + state[id][key]); });
      }
    });
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (hash !== location.hash) history.replaceState(history.state, "", hash || location.pathname + location.search);
  };

  window.addEventListener("hashchange", function () {
    var state = readHash();
    Object.keys(state).forEach(function (id) {
      var v = viewers[id];
      if (v && v.image) { v.touched = true; v.applyHash(state[id], false); }
    });
  });

  /* --- links, print, start-up --------------------------------------------------------------- */

  /* Links that move a viewer: <a class="atlas-link" data-atlas-figure data-atlas-rect>. */
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.atlas-link");
    if (!link) return;
    var av = viewers[link.getAttribute("data-atlas-figure")];
    if (!av) return;
    event.preventDefault();
    var rect = link.getAttribute("data-atlas-rect").split(",").map(Number);
    av.figure.scrollIntoView({ behavior: reducedMotion() ? "auto" : "smooth", block: "nearest" });
    av.start().then(function () {
      av.touched = true;
      av.leaveTour();
      av.fit(rect);
      if (reducedMotion()) av.writeHash();
    }, function () { /* shown in the figure */ });
  });

  window.addEventListener("beforeprint", function () {
    document.querySelectorAll(".atlas-print").forEach(function (img) {
      if (!img.src) img.src = img.getAttribute("data-src");
    });
  });

  window.AtlasViewer = AtlasViewer;
  AtlasViewer.reducedMotion = reducedMotion;
  AtlasViewer.fetchJSON = fetchJSON;

  var figures = document.querySelectorAll(".atlas-figure");
  figures.forEach(function (figure) { viewers[figure.id] = new AtlasViewer(figure); });
  if (figures.length) loadCode().catch(function () { /* reported by the viewer that needs it */ });
  window.atlasViewers = viewers;
  /* A figure named in the hash starts at once (the link was shared for it). */
  var wanted = readHash();
  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      observer.unobserve(entry.target);
      viewers[entry.target.id].start().catch(function () { /* shown in the figure */ });
    });
  }, { rootMargin: "400px 0px" }) : null;
  figures.forEach(function (figure) {
    var box = figure.getBoundingClientRect();
    var near = box.top < window.innerHeight + 400 && box.bottom > -400;
    if (observer && !wanted[figure.id] && !near) observer.observe(figure);
    else viewers[figure.id].start().catch(function () { /* shown in the figure */ });
    if (wanted[figure.id]) figure.scrollIntoView({ block: "center" });
  });
})();

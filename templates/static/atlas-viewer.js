/* atlas-viewer.js: the interactive atlas figures of a page, on OpenSeadragon.

   Each <figure class="atlas-figure"> carries its configuration in a
   <script type="application/json" class="atlas-config"> (written by the build):
     {"atlas": id, "manifest": "../atlases/<id>/viewer.json", "view": [x,y,w,h] | null,
      "tour": [{"rect": [x,y,w,h], "caption": "<p>html</p>"}, ...]}
   Rectangles are in the finest level's image pixels. A viewer starts when its figure nears the
   viewport: OpenSeadragon is loaded once (the <script> tag's data-openseadragon URL), then the
   manifest (viewer.json), then the Deep Zoom image. Hovering shows the cell under the mouse
   (cells-<G>.json); the tour steps through image rectangles with fitBounds; links
   <a class="atlas-link" data-atlas-figure data-atlas-rect> move a viewer; prefers-reduced-motion
   turns animations off. window.atlasViewers maps figure ids to viewers (for tests and authors).
*/
(function () {
  "use strict";

  var script = document.currentScript;
  var OSD_URL = script.getAttribute("data-openseadragon");
  var OSD_IMAGES = script.getAttribute("data-openseadragon-images");
  var motion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;
  var viewers = {};
  var osdLoading = null;

  function reducedMotion() { return !!(motion && motion.matches); }

  function loadOpenSeadragon() {
    if (window.OpenSeadragon) return Promise.resolve(window.OpenSeadragon);
    if (!osdLoading) {
      osdLoading = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = OSD_URL;
        tag.onload = function () { resolve(window.OpenSeadragon); };
        tag.onerror = function () { reject(new Error("could not load " + OSD_URL)); };
        document.head.appendChild(tag);
      });
    }
    return osdLoading;
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
    this.config = JSON.parse(figure.querySelector("script.atlas-config").textContent);
    this.stage = figure.querySelector(".atlas-stage");
    this.info = figure.querySelector(".atlas-cellinfo");
    this.status = figure.querySelector(".atlas-status");
    this.tour = this.config.tour || [];
    this.stop = -1; /* -1: the initial view ("overview"); 0..n-1: tour stops */
    this.cells = {}; /* grid -> Promise of Map "col,row" -> cell row */
    this.ready = null;
  }

  AtlasViewer.prototype.start = function () {
    var self = this;
    if (this.ready) return this.ready;
    var manifestUrl = new URL(this.config.manifest, document.baseURI).href;
    this.figure.setAttribute("data-state", "loading");
    this.ready = Promise.all([loadOpenSeadragon(), fetchJSON(manifestUrl)])
      .then(function (results) { return self.open(results[0], results[1], manifestUrl); })
      .catch(function (error) { self.fail(error); throw error; });
    return this.ready;
  };

  AtlasViewer.prototype.open = function (OSD, manifest, manifestUrl) {
    var self = this;
    this.manifest = manifest;
    this.base = manifestUrl;
    this.viewer = OSD({
      element: this.stage.querySelector(".atlas-osd"),
      prefixUrl: OSD_IMAGES,
      tileSources: new URL(manifest.dzi, manifestUrl).href,
      drawer: "canvas",
      showNavigationControl: false,
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      navigatorSizeRatio: 0.18,
      navigatorAutoFade: false,
      navigatorBackground: window.getComputedStyle(this.stage).backgroundColor,
      visibilityRatio: 0.6,
      constrainDuringPan: true,
      maxZoomPixelRatio: 8, /* icons stay legible far past 1:1; tours may zoom close */
      animationTime: reducedMotion() ? 0 : 0.9,
      springStiffness: reducedMotion() ? 100 : 7,
      blendTime: 0,
      gestureSettingsMouse: { clickToZoom: false },
      crossOriginPolicy: false
    });
    var canvas = this.viewer.canvas;
    canvas.setAttribute("role", "application");
    canvas.setAttribute("aria-roledescription", "zoomable atlas");
    canvas.setAttribute("aria-label", manifest.title || this.config.atlas);
    canvas.setAttribute("aria-describedby", this.figure.id + "-help");
    this.wireControls(OSD);
    return new Promise(function (resolve, reject) {
      self.viewer.addOnceHandler("open", function () {
        self.image = self.viewer.world.getItemAt(0);
        self.home = self.config.view || [0, 0, manifest.width, manifest.height];
        self.fit(self.home, true);
        self.status.textContent = "";
        self.status.hidden = true;
        self.figure.setAttribute("data-state", "ready");
        self.viewer.world.getItemAt(0).whenFullyLoaded(function () {
          self.figure.setAttribute("data-loaded", "true");
        });
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

  /* Move to an image rectangle [x, y, w, h] (pixels of the finest level). */
  AtlasViewer.prototype.fit = function (rect, immediately) {
    var r = this.image.imageToViewportRectangle(rect[0], rect[1], rect[2], rect[3]);
    this.viewer.viewport.fitBounds(r, immediately || reducedMotion());
  };

  /* The level whose cells describe what the reader sees. Only the finest level is used for
     now; semantic zoom picks a coarser one by this.viewer.viewport.getZoom() here. */
  AtlasViewer.prototype.levelForZoom = function () {
    var levels = this.manifest.levels || [];
    return levels[levels.length - 1];
  };

  AtlasViewer.prototype.loadCells = function (level) {
    if (!this.cells[level.grid]) {
      this.cells[level.grid] = fetchJSON(new URL(level.cells, this.base).href).then(function (doc) {
        var map = new Map();
        doc.cells.forEach(function (row) { map.set(row[0] + "," + row[1], row); });
        return map;
      });
    }
    return this.cells[level.grid];
  };

  /* Show the cell at image pixel (x, y), or hide the info outside the atlas. */
  AtlasViewer.prototype.showCellAt = function (x, y) {
    var self = this;
    var level = this.levelForZoom();
    if (!level) return;
    var size = level.cell_px * (level.scale || 1);
    var col = Math.floor(x / size);
    var row = Math.floor(y / size);
    if (x < 0 || y < 0 || col >= level.grid || row >= level.grid) { this.hideCell(); return; }
    this.hoverKey = level.grid + ":" + col + "," + row;
    var key = this.hoverKey;
    this.highlight(col * size, row * size, size);
    this.loadCells(level).then(function (cells) {
      if (self.hoverKey !== key) return;
      self.describeCell(cells.get(col + "," + row), col, row);
    });
  };

  AtlasViewer.prototype.describeCell = function (cell, col, row) {
    var labels = this.manifest.labels || [];
    var info = this.info;
    info.textContent = "";
    var head = document.createElement("strong");
    head.textContent = "Cell " + col + ", " + row;
    info.appendChild(head);
    var text = !cell ? " · empty" : cell[2] > 1 ? " · " + cell[2] + " samples" : "";
    var top = cell ? cell[3] || [] : [];
    if (top.length) {
      text += " · " + top.slice(0, 3).map(function (index, i) {
        var value = cell[4] && cell[4][i] !== undefined ? " (" + cell[4][i] + ")" : "";
        return (labels[index] !== undefined ? labels[index] : "class " + index) + value;
      }).join(", ");
    }
    info.appendChild(document.createTextNode(text));
    info.setAttribute("data-cell", col + "," + row);
    info.hidden = false;
  };

  AtlasViewer.prototype.highlight = function (x, y, size) {
    var OSD = window.OpenSeadragon;
    var rect = this.image.imageToViewportRectangle(x, y, size, size);
    if (!this.marker) {
      this.marker = document.createElement("div");
      this.marker.className = "atlas-cell-marker";
      this.viewer.addOverlay({ element: this.marker, location: rect, checkResize: false });
    } else {
      this.viewer.updateOverlay(this.marker, rect, OSD.Placement.TOP_LEFT);
    }
    this.marker.hidden = false;
  };

  AtlasViewer.prototype.hideCell = function () {
    this.hoverKey = null;
    this.info.hidden = true;
    if (this.marker) this.marker.hidden = true;
  };

  AtlasViewer.prototype.pointerToImage = function (pixel) {
    var point = this.viewer.viewport.pointFromPixel(pixel);
    return this.image.viewportToImageCoordinates(point);
  };

  AtlasViewer.prototype.wireControls = function (OSD) {
    var self = this;
    var viewer = this.viewer;
    new OSD.MouseTracker({
      element: viewer.canvas,
      moveHandler: function (event) {
        if (!self.image) return;
        var p = self.pointerToImage(event.position);
        self.showCellAt(p.x, p.y);
      },
      leaveHandler: function () { self.hideCell(); }
    }).setTracking(true);
    /* Keyboard (the canvas has focus): one step per key press, so a tap always moves visibly
       (OpenSeadragon's own keys move continuously while held); 0/Home returns to the figure's
       view; n/p step through the tour. After a keyboard move the info shows the centre cell. */
    var steps = {
      ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1],
      a: [-1, 0], d: [1, 0], w: [0, -1], s: [0, 1]
    };
    viewer.addHandler("canvas-key", function (event) {
      var key = event.originalEvent.key;
      var e = event.originalEvent;
      if (e.ctrlKey || e.altKey || e.metaKey) return;
      var vp = viewer.viewport;
      var moved = true; /* free moves are constrained; tour stops are shown as authored */
      if (key === "0" || key === "Home") { self.go(-1); moved = false; }
      else if (key === "n" && self.tour.length) { self.go(self.stop + 1); moved = false; }
      else if (key === "p" && self.tour.length) { self.go(self.stop - 1); moved = false; }
      else if (key === "+" || key === "=") vp.zoomBy(1.5, null, reducedMotion());
      else if (key === "-" || key === "_") vp.zoomBy(1 / 1.5, null, reducedMotion());
      else if (steps[key]) {
        var b = vp.getBounds();
        var delta = new OSD.Point(steps[key][0] * b.width * 0.15, steps[key][1] * b.height * 0.15);
        vp.panBy(delta, reducedMotion());
      } else return;
      event.preventDefaultAction = true;
      e.preventDefault();
      if (moved) vp.applyConstraints(reducedMotion());
    });
    viewer.addHandler("animation-finish", function () {
      if (document.activeElement !== viewer.canvas || !self.image) return;
      var c = self.image.viewportToImageCoordinates(viewer.viewport.getCenter(true));
      self.showCellAt(c.x, c.y);
    });
    this.figure.querySelectorAll(".atlas-controls button").forEach(function (button) {
      button.addEventListener("click", function () {
        var action = button.getAttribute("data-action");
        var now = reducedMotion();
        if (action === "zoom-in") viewer.viewport.zoomBy(1.5, null, now);
        else if (action === "zoom-out") viewer.viewport.zoomBy(1 / 1.5, null, now);
        else if (action === "reset") self.go(-1);
        else if (action === "fullscreen") self.toggleFullscreen();
        if (action === "zoom-in" || action === "zoom-out") viewer.viewport.applyConstraints(now);
      });
    });
    var prev = this.figure.querySelector(".atlas-tour-prev");
    var next = this.figure.querySelector(".atlas-tour-next");
    if (prev) prev.addEventListener("click", function () { self.go(self.stop - 1); });
    if (next) next.addEventListener("click", function () { self.go(self.stop + 1); });
  };

  /* Full screen for the stage (viewer and its controls); Esc or the button leaves it. */
  AtlasViewer.prototype.toggleFullscreen = function () {
    if (document.fullscreenElement === this.stage) document.exitFullscreen();
    else if (this.stage.requestFullscreen) this.stage.requestFullscreen();
  };

  /* Go to tour stop i (-1: the figure's initial view) and update the tour's controls. */
  AtlasViewer.prototype.go = function (i) {
    var n = this.tour.length;
    this.stop = Math.max(-1, Math.min(i, n - 1));
    this.fit(this.stop < 0 ? this.home : this.tour[this.stop].rect);
    var bar = this.figure.querySelector(".atlas-tour");
    if (!bar) return;
    bar.querySelector(".atlas-tour-prev").disabled = this.stop < 0;
    bar.querySelector(".atlas-tour-next").disabled = this.stop >= n - 1;
    bar.querySelector(".atlas-tour-status").textContent =
      this.stop < 0 ? "Overview · " + n + (n === 1 ? " stop" : " stops") : (this.stop + 1) + " of " + n;
    bar.querySelector(".atlas-tour-caption").innerHTML = this.stop < 0 ? "" : this.tour[this.stop].caption;
    this.figure.setAttribute("data-stop", String(this.stop + 1));
  };

  /* Links that move a viewer: <a class="atlas-link" data-atlas-figure data-atlas-rect>. */
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.atlas-link");
    if (!link) return;
    var av = viewers[link.getAttribute("data-atlas-figure")];
    if (!av) return;
    event.preventDefault();
    var rect = link.getAttribute("data-atlas-rect").split(",").map(Number);
    av.figure.scrollIntoView({ behavior: reducedMotion() ? "auto" : "smooth", block: "nearest" });
    av.start().then(function () { av.fit(rect); }, function () { /* shown in the figure */ });
  });

  window.addEventListener("beforeprint", function () {
    document.querySelectorAll(".atlas-print").forEach(function (img) {
      if (!img.src) img.src = img.getAttribute("data-src");
    });
  });

  var figures = document.querySelectorAll(".atlas-figure");
  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      observer.unobserve(entry.target);
      viewers[entry.target.id].start().catch(function () { /* shown in the figure */ });
    });
  }, { rootMargin: "400px 0px" }) : null;
  figures.forEach(function (figure) {
    viewers[figure.id] = new AtlasViewer(figure);
    if (observer) observer.observe(figure);
    else viewers[figure.id].start().catch(function () { /* shown in the figure */ });
  });
  window.atlasViewers = viewers;
})();

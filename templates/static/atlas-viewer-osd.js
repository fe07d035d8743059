/* atlas-viewer-osd.js: the OpenSeadragon adapter.

   Every use of OpenSeadragon beyond its documented API is here, written against one version,
   OSD_VERSION: the pin of package.json and package-lock.json (tests/browser/
   test_viewer_assets.py checks that the three agree). Another version is refused before any
   viewer is made: loadOpenSeadragon() rejects with a VersionMismatch, the figure keeps its
   static image and says why, and the console names both versions
   (tests/browser/test_viewer_loading.py). After an upgrade, check each item below against
   the new version's source, then change OSD_VERSION together with the pin.

   The internals, and what relies on each:
   - TiledImage.getTilesToDraw() (called once per frame by the drawer) is wrapped per image:
     keepOneGrid() filters the tiles of a frame, so that one grid is drawn at a time
     (atlas-viewer-zoom.js).
   - TiledImage.minPixelRatio is assigned after creation (the option is copied into the image
     when it opens; there is no setter): setMinPixelRatio() keeps the level choice in CSS px
     when the window moves to a screen of another pixel density (atlas-viewer-zoom.js).
   - CanvasDrawer.context (@private in OpenSeadragon) and the order of a frame (the world is
     drawn, then "update-viewport" is raised, in the same frame): afterEachFrame() hands the
     2D context of the drawn frame to a painter (atlas-viewer-paint.js). Only the "canvas"
     drawer has one: createViewer() always asks for it.
   - Viewer.gestureSettings{Mouse,Touch,Pen} are changed in place after creation:
     lockGestures() turns pan and zoom gestures off and back on (tours, atlas-viewer-tour.js).
   Everything else the viewer uses is documented API: Viewer, viewport, world, overlays,
   MouseTracker, Point, Placement, pixelDensityRatio and events. */

/* The OpenSeadragon version this adapter is written for (package.json pins it). */
export var OSD_VERSION = "6.1.1";

/* The OpenSeadragon on the page is not OSD_VERSION. */
export class VersionMismatch extends Error {
  constructor(found) {
    super("OpenSeadragon " + found + " is loaded, but the atlas viewer needs OpenSeadragon " +
      OSD_VERSION + " (expected " + OSD_VERSION + ", found " + found + ")");
    this.name = "VersionMismatch";
    this.expected = OSD_VERSION;
    this.found = found;
  }
}

/* Throws a VersionMismatch unless `OSD` is OSD_VERSION; returns it. */
export function checkVersion(OSD) {
  var found = OSD && OSD.version && OSD.version.versionStr;
  if (found !== OSD_VERSION) throw new VersionMismatch(found ? String(found) : "none");
  return OSD;
}

var loading = null;

/* window.OpenSeadragon, loading the script at `url` when it is not there yet (once per page),
   checked against OSD_VERSION. */
export function loadOpenSeadragon(url) {
  if (!loading) {
    loading = (window.OpenSeadragon ? Promise.resolve() : new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = url;
      tag.onload = resolve;
      tag.onerror = function () { reject(new Error("could not load " + url)); };
      document.head.appendChild(tag);
    })).then(function () { return checkVersion(window.OpenSeadragon); });
  }
  return loading;
}

/* A viewer with the 2D canvas drawer (the only one afterEachFrame can paint on). */
export function createViewer(OSD, options) {
  checkVersion(OSD);
  return OSD(Object.assign({}, options, { drawer: "canvas" }));
}

/* Let `choose(infos)` pick the tiles `image` draws in each frame: it gets OpenSeadragon's list
   of DrawTileInfo ({level, tile, ...}, coarse levels first, after its coverage pruning) and
   returns the list to draw. */
export function keepOneGrid(image, choose) {
  var tilesToDraw = image.getTilesToDraw;
  image.getTilesToDraw = function () {
    return choose(tilesToDraw.call(image));
  };
}

/* Set the image's minPixelRatio; redraw when it changed. */
export function setMinPixelRatio(viewer, image, ratio) {
  if (image.minPixelRatio === ratio) return;
  image.minPixelRatio = ratio;
  viewer.forceRedraw();
}

/* Call paint(context) after each frame is drawn, with the drawer's 2D context (canvas px). */
export function afterEachFrame(viewer, paint) {
  viewer.addHandler("update-viewport", function () {
    var context = viewer.drawer && viewer.drawer.context;
    if (context) paint(context);
  });
}

var GESTURES = ["dragToPan", "scrollToZoom", "pinchToZoom", "dblClickToZoom", "flickEnabled"];
var savedGestures = new WeakMap(); /* gesture settings object -> its values before a lock */

/* Turn the pan and zoom gestures of every pointer kind off (locked) or back as they were. */
export function lockGestures(viewer, locked) {
  [viewer.gestureSettingsMouse, viewer.gestureSettingsTouch, viewer.gestureSettingsPen].forEach(function (settings) {
    if (!settings) return;
    if (locked) {
      var saved = savedGestures.get(settings) || {};
      GESTURES.forEach(function (g) { saved[g] = settings[g]; settings[g] = false; });
      savedGestures.set(settings, saved);
    } else if (savedGestures.has(settings)) {
      var before = savedGestures.get(settings);
      GESTURES.forEach(function (g) { settings[g] = before[g]; });
    }
  });
}

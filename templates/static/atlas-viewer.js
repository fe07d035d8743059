/* atlas-viewer.js: the interactive atlas figures of a page, on OpenSeadragon (the entry module).

   Each <figure class="atlas-figure"> carries its configuration in a
   <script type="application/json" class="atlas-config"> (written by the build):
     {"atlas": id, "manifest": "../atlases/<id>/viewer.json", "view": [x,y,w,h] | null,
      "tour": [{"rect": [x,y,w,h], "caption": "<p>html</p>", ...}, ...], "scroll": false,
      "flip": null | "x" | "y" | "xy", "group": null | "<figure id of a layers figure>"}
   Rectangles are in the finest level's image pixels.

   The viewer is a set of ES modules, each importing what it uses by a relative URL (so the
   site works under any subpath). The page loads this one (<script type="module"
   data-openseadragon data-openseadragon-images>) after an import map that the build writes:
   it maps every module's URL to the URL with ?v=<digest of the file and of the modules it
   imports>, so a browser refetches exactly the modules that changed (the build makes the
   digests, generator/site/output.py; nobody keeps a table). This module and those it imports
   statically are small; OpenSeadragon and the viewer's parts load (import()) as soon as the
   page has a figure, and each viewer starts when its figure nears the viewport (or at once
   when the hash names it). The modules:
     atlas-viewer-hash.js    the page's viewers and their views in the URL hash
     atlas-viewer-view.js    one figure's viewer (AtlasViewer): the state its parts share
     atlas-viewer-osd.js     the OpenSeadragon adapter: every internal it uses, one version
     atlas-viewer-zoom.js    semantic zoom (one grid drawn at a time)
     atlas-viewer-cells.js   cell metadata
     atlas-viewer-paint.js   the density control, class heat maps and labels, on the canvas
     atlas-viewer-hover.js   the cell under the pointer: outline, tooltip, click
     atlas-viewer-tools.js   the tools (class search, density, labels)
     atlas-viewer-panel.js   the details panel (cell details, examples, heat map)
     atlas-viewer-tour.js    the tour: stops, step list, highlights and arrows, scroll-driven
     atlas-viewer-linked.js  viewers side by side whose hover and class choice are linked
     atlas-viewer-axes.js    the axis labels of a two-class comparison
     atlas-viewer-util.js    stateless helpers
   This module: start-up, text links <a class="atlas-link" data-atlas-figure data-atlas-rect>,
   hash changes and print. window.atlasViewers maps figure ids to viewers (for tests and
   authors). */

import { readHash, viewers } from "./atlas-viewer-hash.js";
import { reducedMotion } from "./atlas-viewer-util.js";
import { AtlasViewer, loadCode } from "./atlas-viewer-view.js";

var tag = document.querySelector("script[data-openseadragon]");
var assets = {
  openseadragon: tag ? tag.getAttribute("data-openseadragon") : new URL("openseadragon/openseadragon.min.js", import.meta.url).href,
  images: tag ? tag.getAttribute("data-openseadragon-images") : new URL("openseadragon/images/", import.meta.url).href
};

window.addEventListener("hashchange", function () {
  var state = readHash();
  Object.keys(state).forEach(function (id) {
    var v = viewers[id];
    if (v && v.image) { v.touch(); v.applyHash(state[id], false); }
  });
});

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
    av.touch();
    av.tour.leave();
    av.fit(rect);
    if (reducedMotion()) av.writeHash();
  }, function () { /* shown in the figure */ });
});

window.addEventListener("beforeprint", function () {
  document.querySelectorAll(".atlas-print").forEach(function (img) {
    if (!img.src) img.src = img.getAttribute("data-src");
  });
});

var figures = document.querySelectorAll(".atlas-figure");
figures.forEach(function (figure) { viewers[figure.id] = new AtlasViewer(figure, assets); });
if (figures.length) loadCode(assets.openseadragon).catch(function () { /* reported by the viewer that needs it */ });
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

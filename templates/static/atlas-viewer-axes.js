/* atlas-viewer-axes.js: the axis labels of a two-class comparison.

   A comparison's manifest (viewer.json, kind "comparison") names its axes in
   info.axes = {"x": [left class, right class], "y": "what the vertical axis shows"}: samples
   attributed more to the left class lie left of the centre, those attributed more to the right
   class right of it (METHOD.md 6). The labels are HTML over the stage, fixed to its edges (they
   describe directions, not places, so they do not move with pan and zoom): the x labels at the
   bottom centre, the y label along the left edge. An axis flip that mirrors left-right ("x",
   "xy") swaps the two class labels, so they keep naming what the reader sees. */
(function () {
  "use strict";

  var AV = window.AtlasViewer;

  function span(className, text) {
    var el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }

  AV.prototype.initAxes = function () {
    var manifest = this.manifest || {};
    var axes = manifest.kind === "comparison" && manifest.info ? manifest.info.axes : null;
    if (!axes || !Array.isArray(axes.x) || axes.x.length !== 2) return;
    var left = String(axes.x[0]), right = String(axes.x[1]);
    if (this.flip.x) { var swap = left; left = right; right = swap; }
    var box = document.createElement("div");
    box.className = "atlas-axes";
    box.setAttribute("role", "note");
    box.setAttribute("aria-label", "Horizontal axis: more " + left + " to the left, more " +
      right + " to the right" + (axes.y ? ". Vertical axis: " + axes.y : ""));
    var x = document.createElement("p");
    x.className = "atlas-axis-x";
    x.setAttribute("aria-hidden", "true");
    x.appendChild(span("atlas-axis-left", "\u2190 " + left));
    x.appendChild(span("atlas-axis-right", right + " \u2192"));
    box.appendChild(x);
    if (axes.y) {
      var y = span("atlas-axis-y", String(axes.y));
      y.setAttribute("aria-hidden", "true");
      box.appendChild(y);
    }
    this.stage.appendChild(box);
    this.axes = { left: left, right: right, element: box };
  };
})();

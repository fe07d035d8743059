/* atlas-viewer-axes.js: the axis labels of a two-class comparison.

   A comparison's manifest (viewer.json, kind "comparison") names its axes in
   info.axes = {"x": [left class, right class], "y": "what the vertical axis shows"}: samples
   attributed more to the left class lie left of the centre, those attributed more to the right
   class right of it (METHOD.md 6). The labels describe directions, not places, so they do not
   move with pan and zoom: they sit in a strip along the bottom of the stage, below the image
   (the stage's class atlas-has-axes makes room for it before OpenSeadragon measures its
   container, so no icon is ever under a label): "← left" at its left end, "right →" at its
   right end, and "↕ " + the y description between them (cut with an ellipsis when the stage is
   narrow; the whole text is the strip's aria-label and the y label's title). An axis flip that
   mirrors left-right ("x", "xy") swaps the two class labels, so they keep naming what the
   reader sees. The axes are made before the viewer is created (atlas-viewer-view.js).

   API (view.axes): left, right (the class labels at each end, after a flip), element. */

function span(className, text) {
  var el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

/* The axis strip of `view`, or null when its atlas is not a comparison with axes. */
export function makeAxes(view) {
  var manifest = view.manifest || {};
  var axes = manifest.kind === "comparison" && manifest.info ? manifest.info.axes : null;
  if (!axes || !Array.isArray(axes.x) || axes.x.length !== 2) return null;
  var left = String(axes.x[0]), right = String(axes.x[1]);
  if (view.flip.x) { var swap = left; left = right; right = swap; }
  var box = document.createElement("div");
  box.className = "atlas-axes";
  box.setAttribute("role", "note");
  box.setAttribute("aria-label", "Horizontal axis: more " + left + " to the left, more " +
    right + " to the right" + (axes.y ? ". Vertical axis: " + axes.y : ""));
  var parts = [span("atlas-axis-left", "\u2190 " + left), span("atlas-axis-y", ""),
    span("atlas-axis-right", right + " \u2192")];
  if (axes.y) {
    parts[1].textContent = "\u2195 " + String(axes.y);
    parts[1].title = "Vertical axis: " + String(axes.y);
  }
  parts.forEach(function (part) { part.setAttribute("aria-hidden", "true"); box.appendChild(part); });
  view.stage.appendChild(box);
  view.stage.classList.add("atlas-has-axes");
  return { left: left, right: right, element: box };
}

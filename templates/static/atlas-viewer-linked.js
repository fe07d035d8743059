/* atlas-viewer-linked.js: viewers side by side (a layers figure, generator/site/layers.py)
   whose hover and class choice are linked.

   Viewers whose configuration names the same "group" (the layers figure's id) form a group:
   - hovering a cell in one marks, in every other, the cells whose top class is the hovered
     cell's top class (an orange outline);
   - the figure's class menu (.atlas-layers-class) marks that class's top-class cells in every
     viewer (a blue outline and tint, other cells washed out); the block's "class" is chosen
     at load;
   - a class picked in a viewer's own heat-map box is heat-mapped in every viewer that has heat
     maps (the others mark its top-class cells), and clearing it clears them all.
   Classes are matched by name (atlases may have different label lists). Marks are painted on
   the canvas after each frame (AV.painters, atlas-viewer-paint.js), for the grid shown, with
   the viewer's axis flips; this.painted.linked counts them (for tests).
*/
(function (AV) {
  "use strict";

  var groups = {}; /* group id -> [viewers] */
  var HOVER = "rgba(232,120,20,0.95)", CHOSEN = "rgba(11,87,208,0.95)";

  AV.prototype.initLinked = function () {
    var group = this.config.group;
    if (!group) return;
    (groups[group] = groups[group] || []).push(this);
    this.linked = { hover: -1, chosen: -1, chosenName: null };
    var figure = document.getElementById(group);
    var select = figure && figure.querySelector(".atlas-layers-class");
    this.groupSelect = select;
    if (select && !select.hasAttribute("data-wired")) {
      select.setAttribute("data-wired", "");
      select.addEventListener("change", function () {
        (groups[group] || []).forEach(function (v) { v.setLinkedClass(select.value || null, false); });
      });
    }
    if (select && select.value) this.setLinkedClass(select.value, false);
  };

  AV.prototype.classIndex = function (name) {
    return name === null ? -1 : (this.manifest.labels || []).indexOf(name);
  };

  /* Show class `name` (null: none): marks of its top-class cells, or (heat, where the atlas has
     heat maps) its heat map. */
  AV.prototype.setLinkedClass = function (name, heat) {
    var k = this.classIndex(name);
    var useHeat = heat && k >= 0 && this.heatAvailable();
    this.linked.chosenName = name;
    this.linked.chosen = useHeat ? -1 : k;
    var shown = this.heat ? this.heat.klass : null;
    if ((useHeat && shown !== k) || (!useHeat && shown !== null)) {
      this.linking = true;
      try { this.chooseClass(useHeat ? k : null); } finally { this.linking = false; }
    }
    this.figure.setAttribute("data-linked-class", name || "");
    this.viewer.forceRedraw();
  };

  /* A class picked in this viewer's heat-map box (atlas-viewer-panel.js calls this). */
  AV.prototype.classChosen = function (k) {
    if (this.linking || !this.config.group) return;
    var name = k === null ? null : this.label(k);
    var self = this;
    var select = this.groupSelect;
    if (select) select.value = name && select.querySelector('option[value="' + CSS.escape(name) + '"]') ? name : "";
    this.linked.chosen = -1;
    this.linked.chosenName = name;
    (groups[this.config.group] || []).forEach(function (v) { if (v !== self) v.setLinkedClass(name, true); });
  };

  /* The reader hovers `cell` (null: left the atlas) whose metadata row is `row`. */
  AV.prototype.cellShown = function (cell, row) {
    if (!this.config.group) return;
    var name = row && row[3] && row[3].length ? this.label(row[3][0]) : null;
    if (name === this.linkedSent) return;
    this.linkedSent = name;
    var self = this;
    (groups[this.config.group] || []).forEach(function (v) { if (v !== self && v.linked) v.setLinkedHover(name); });
  };

  AV.prototype.setLinkedHover = function (name) {
    this.linked.hover = this.classIndex(name);
    this.figure.setAttribute("data-linked-hover", name || "");
    if (this.viewer) this.viewer.forceRedraw();
  };

  /* The marks, painted after the heat map and labels of each frame. */
  AV.painters = AV.painters || [];
  AV.painters.push(function (ctx, geo, level, range) {
    var linked = this.linked;
    if (!linked) return;
    this.painted.linked = { hover: 0, chosen: 0 };
    if ((linked.hover < 0 && linked.chosen < 0) || !this.cellsReady(level, range)) return;
    var size = AV.cellSize(level) * geo.k, bg = this.background, dpr = geo.dpr;
    var chosen = [], hovered = [], others = [];
    this.cellsOf(level).rows.forEach(function (row) {
      if (row[0] < range[0] || row[0] > range[2] || row[1] < range[1] || row[1] > range[3]) return;
      var top = row[3] && row[3].length ? row[3][0] : -1;
      var at = geo.corner(row[0], row[1], size);
      if (linked.chosen >= 0) (top === linked.chosen ? chosen : others).push(at);
      if (linked.hover >= 0 && top === linked.hover) hovered.push(at);
    });
    ctx.fillStyle = "rgba(" + bg[0] + "," + bg[1] + "," + bg[2] + ",0.55)";
    others.forEach(function (at) { ctx.fillRect(at[0], at[1], size, size); });
    ctx.fillStyle = "rgba(11,87,208,0.14)";
    ctx.strokeStyle = CHOSEN;
    ctx.lineWidth = 2 * dpr;
    chosen.forEach(function (at) {
      ctx.fillRect(at[0], at[1], size, size);
      ctx.strokeRect(at[0] + dpr, at[1] + dpr, size - 2 * dpr, size - 2 * dpr);
    });
    ctx.strokeStyle = HOVER;
    ctx.lineWidth = 3 * dpr;
    hovered.forEach(function (at) { ctx.strokeRect(at[0] + 1.5 * dpr, at[1] + 1.5 * dpr, size - 3 * dpr, size - 3 * dpr); });
    this.painted.linked = { hover: hovered.length, chosen: chosen.length };
  });
})(window.AtlasViewer);

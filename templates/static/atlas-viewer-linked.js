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
   the canvas after each frame (view.paint.addPainter), for the grid shown, with the viewer's
   axis flips; view.paint.painted.linked counts them (for tests).

   API (view.linked, only for viewers in a group): setClass(name, heat), setHover(name).
   Listens to "hover" and "class" on its view; the members of a group reach each other
   through `groups` (this module's own record). */

import { cellSize } from "./atlas-viewer-util.js";

var groups = {}; /* group id -> [Linked] */
var HOVER = "rgba(232,120,20,0.95)", CHOSEN = "rgba(11,87,208,0.95)";

export class Linked {
  constructor(view) {
    var self = this;
    var group = view.config.group;
    this.view = view;
    this.group = group;
    this.hover = -1; /* class index whose cells are marked for a hover elsewhere */
    this.chosen = -1; /* class index chosen in the menu (or elsewhere, without heat maps here) */
    this.chosenName = null;
    this.sent = undefined; /* the top class of the last hover told to the group */
    (groups[group] = groups[group] || []).push(this);
    var figure = document.getElementById(group);
    var select = figure && figure.querySelector(".atlas-layers-class");
    this.select = select;
    if (select && !select.hasAttribute("data-wired")) {
      select.setAttribute("data-wired", "");
      select.addEventListener("change", function () {
        (groups[group] || []).forEach(function (member) { member.setClass(select.value || null, false); });
      });
    }
    view.on("hover", function (cell, row) { self.cellShown(row); });
    view.on("class", function (k, linked) { if (!linked) self.classChosen(k); });
    view.paint.addPainter("linked", function (ctx, geo, level, range) { return self.paint(ctx, geo, level, range); });
    if (select && select.value) this.setClass(select.value, false);
  }

  classIndex(name) {
    return name === null ? -1 : (this.view.manifest.labels || []).indexOf(name);
  }

  /* Show class `name` (null: none): marks of its top-class cells, or (heat, where the atlas has
     heat maps) its heat map. */
  setClass(name, heat) {
    var view = this.view;
    var k = this.classIndex(name);
    var useHeat = heat && k >= 0 && view.paint.heatAvailable();
    this.chosenName = name;
    this.chosen = useHeat ? -1 : k;
    var shown = view.paint.heatClass();
    if ((useHeat && shown !== k) || (!useHeat && shown !== null)) view.panel.chooseClass(useHeat ? k : null, true);
    view.figure.setAttribute("data-linked-class", name || "");
    view.viewer.forceRedraw();
  }

  /* A class picked in this viewer's heat-map box: every other viewer of the group shows it. */
  classChosen(k) {
    var view = this.view, self = this;
    var name = k === null ? null : view.label(k);
    var select = this.select;
    if (select) select.value = name && select.querySelector('option[value="' + CSS.escape(name) + '"]') ? name : "";
    this.chosen = -1;
    this.chosenName = name;
    (groups[this.group] || []).forEach(function (member) { if (member !== self) member.setClass(name, true); });
  }

  /* The reader hovers a cell whose metadata row is `row` (null: left the atlas, or no row). */
  cellShown(row) {
    var name = row && row[3] && row[3].length ? this.view.label(row[3][0]) : null;
    if (name === this.sent) return;
    this.sent = name;
    var self = this;
    (groups[this.group] || []).forEach(function (member) { if (member !== self) member.setHover(name); });
  }

  setHover(name) {
    this.hover = this.classIndex(name);
    this.view.figure.setAttribute("data-linked-hover", name || "");
    this.view.viewer.forceRedraw();
  }

  /* The marks, painted after the heat map and labels of each frame; returns their counts. */
  paint(ctx, geo, level, range) {
    var view = this.view, self = this;
    var painted = { hover: 0, chosen: 0 };
    if ((this.hover < 0 && this.chosen < 0) || !view.cells.ready(level, range)) return painted;
    var size = cellSize(level) * geo.k, bg = view.paint.background, dpr = geo.dpr;
    var chosen = [], hovered = [], others = [];
    view.cells.of(level).rows.forEach(function (row) {
      if (row[0] < range[0] || row[0] > range[2] || row[1] < range[1] || row[1] > range[3]) return;
      var top = row[3] && row[3].length ? row[3][0] : -1;
      var at = geo.corner(row[0], row[1], size);
      if (self.chosen >= 0) (top === self.chosen ? chosen : others).push(at);
      if (self.hover >= 0 && top === self.hover) hovered.push(at);
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
    return { hover: hovered.length, chosen: chosen.length };
  }
}

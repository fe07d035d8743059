/* atlas-viewer-tour.js: guided tours of an atlas viewer (Minerva-style waypoints).

   The figure's configuration lists the stops (written by the build, queries already resolved):
     "tour": [{"rect": [x,y,w,h], "title": "...", "caption": "<p>html</p>",
               "highlights": [{"rect": [x,y,w,h], "label": "..."}],
               "arrows": [{"from": [x,y], "to": [x,y], "label": "..."}]}, ...],
     "scroll": false
   (image px of the finest level; the same rectangles are in the page as W3C Web Annotations,
   <script type="application/ld+json" class="atlas-annotations">).

   A stop is shown with fitBounds of its rectangle (no animation under reduced motion), its
   caption, its highlights and arrows drawn over the atlas (an SVG and label layer redrawn each
   frame; a highlight's label above its rectangle, or below or inside it where the stage has no
   room, clear of the tools and buttons), "n of m", and the step list's current entry. While a
   tour is on, pan and zoom gestures are locked (hover and click still work, the page scrolls
   over the figure), the arrow keys step (canvas or tour controls focused), and the URL hash
   holds <fig>.step=<n> (1-based; a link with it opens that stop). "Explore freely" (or any zoom
   button/key, a text link, a hash with <fig>.xywh, 0/Home) leaves the tour where it is and
   restores free pan and zoom; Next/Previous or a step resume it. A scroll-driven tour
   ("scroll": true) shows the stops as the reader scrolls its step texts (.atlas-step) past the
   middle of the window (IntersectionObserver), beside or under a sticky viewer.

   API (view.tour): stops (the configuration's), stop (-1: the initial view, "overview";
   0..n-1: the stop shown), touring, step(delta), goStep(i, immediately), go(i, immediately)
   (go(-1): the figure's initial view), leave() (explore freely from here). */

import * as osd from "./atlas-viewer-osd.js";
import { reducedMotion } from "./atlas-viewer-util.js";

var SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  var node = document.createElementNS(SVG, tag);
  Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
  return node;
}

export class Tour {
  constructor(view) {
    var self = this;
    var fig = view.figure;
    this.view = view;
    this.stops = view.config.tour || [];
    this.stop = -1; /* -1: the initial view ("overview"); 0..n-1: tour stops */
    this.touring = false;
    this.bar = fig.querySelector(".atlas-tour");
    this.annot = null; /* the layer of highlights and arrows */
    this.scrollTexts = null;
    if (!this.stops.length) return;
    this.annot = document.createElement("div");
    this.annot.className = "atlas-annot";
    this.annot.setAttribute("aria-hidden", "true");
    view.stage.insertBefore(this.annot, view.stage.querySelector(".atlas-controls"));
    view.viewer.addHandler("update-viewport", function () { self.drawAnnotations(); });
    view.viewer.addHandler("resize", function () { if (self.touring) view.fit(self.stops[self.stop].rect, true); });
    var prev = fig.querySelector(".atlas-tour-prev"), next = fig.querySelector(".atlas-tour-next");
    if (prev) prev.addEventListener("click", function () { self.step(-1); });
    if (next) next.addEventListener("click", function () { self.step(1); });
    var exit = fig.querySelector(".atlas-tour-exit");
    if (exit) exit.addEventListener("click", function () { self.leave(); view.viewer.canvas.focus(); });
    fig.querySelectorAll(".atlas-tour-steps button").forEach(function (button) {
      button.addEventListener("click", function () { self.goStep(Number(button.getAttribute("data-step")) - 1); });
    });
    if (this.bar) {
      this.bar.addEventListener("keydown", function (event) {
        if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
        if (event.target.closest && event.target.closest("input, textarea")) return;
        self.step(event.key === "ArrowRight" ? 1 : -1);
        event.preventDefault();
      });
    }
    if (view.config.scroll) this.initScroll();
    this.showTourState();
  }

  /* One step forward or back (resuming a tour left at its current stop). */
  step(delta) {
    if (this.view.config.scroll) { this.scrollToStep(this.stop + delta); return; }
    this.go(this.stop + delta);
  }

  /* A step chosen by the reader (list, hash): scroll-driven tours scroll its text into view. */
  goStep(i, immediately) {
    if (this.view.config.scroll) this.scrollToStep(i);
    else this.go(i, immediately);
  }

  /* Go to tour stop i (-1: the figure's initial view, free exploration). */
  go(i, immediately) {
    var view = this.view, n = this.stops.length;
    view.touch();
    this.stop = Math.max(-1, Math.min(i, n - 1));
    if (this.stop < 0) {
      this.setTouring(false);
      view.fit(view.home, immediately);
    } else {
      this.setTouring(true);
      view.fit(this.stops[this.stop].rect, immediately);
    }
    this.showTourState();
    this.drawAnnotations();
    if (immediately || reducedMotion()) view.writeHash();
  }

  /* Leave the tour where it is: free pan and zoom again, overlays hidden. */
  leave() {
    if (!this.touring) return;
    this.setTouring(false);
    this.showTourState();
    this.drawAnnotations();
    this.view.writeHash();
  }

  /* Tour on: pan and zoom gestures locked (hover and clicks still work). */
  setTouring(on) {
    if (on === this.touring) return;
    this.touring = on;
    osd.lockGestures(this.view.viewer, on);
    this.view.figure.classList.toggle("atlas-touring", on);
  }

  /* Buttons, "n of m", the caption, the step list and the figure's data-stop. */
  showTourState() {
    var n = this.stops.length, i = this.stop, fig = this.view.figure;
    fig.setAttribute("data-stop", String(this.touring ? i + 1 : 0));
    if (!this.bar) return;
    var prev = this.bar.querySelector(".atlas-tour-prev"), next = this.bar.querySelector(".atlas-tour-next");
    if (prev) prev.disabled = i < 0 || (i === 0 && this.touring);
    if (next) next.disabled = i >= n - 1 && this.touring;
    var exit = this.bar.querySelector(".atlas-tour-exit");
    if (exit) exit.hidden = !this.touring;
    var status = this.bar.querySelector(".atlas-tour-status");
    if (status) {
      status.textContent = this.touring ? (i + 1) + " of " + n
        : i < 0 ? "Overview · " + n + (n === 1 ? " stop" : " stops") : "Exploring freely · stop " + (i + 1) + " of " + n;
    }
    var caption = this.bar.querySelector(".atlas-tour-caption");
    if (caption) caption.innerHTML = this.touring ? this.stops[i].caption : "";
    this.bar.querySelectorAll(".atlas-tour-steps button").forEach(function (button, j) {
      if (j === i && this.touring) button.setAttribute("aria-current", "step");
      else button.removeAttribute("aria-current");
    }, this);
    fig.querySelectorAll(".atlas-step").forEach(function (text, j) {
      text.classList.toggle("atlas-step-current", j === i && this.touring);
    }, this);
  }

  /* --- highlights and arrows ------------------------------------------------------------------ */

  /* Redraw the current stop's overlays at their places on screen (every frame while touring). */
  drawAnnotations() {
    var layer = this.annot;
    if (!layer) return;
    var stop = this.touring ? this.stops[this.stop] : null;
    var marks = stop ? (stop.highlights || []).length + (stop.arrows || []).length : 0;
    if (!marks) {
      if (layer.firstChild) layer.textContent = "";
      layer.removeAttribute("data-stop");
      return;
    }
    if (layer.getAttribute("data-stop") !== String(this.stop)) this.buildAnnotations(stop);
    var self = this, view = this.view;
    var place = function (x, y) { return view.imageToStage(x, y); };
    var blocked = view.paint.coveredRects(1); /* tools, buttons, panel, navigator (stage px) */
    layer.querySelectorAll("[data-highlight]").forEach(function (node) {
      var h = stop.highlights[Number(node.getAttribute("data-highlight"))];
      var a = place(h.rect[0], h.rect[1]), b = place(h.rect[0] + h.rect[2], h.rect[1] + h.rect[3]);
      var x = Math.min(a.x, b.x), y = Math.min(a.y, b.y);
      var w = Math.abs(b.x - a.x), hh = Math.abs(b.y - a.y);
      if (node.tagName.toLowerCase() === "rect") {
        node.setAttribute("x", x); node.setAttribute("y", y);
        node.setAttribute("width", w); node.setAttribute("height", hh);
      } else {
        self.placeLabel(node, [x, y, x + w, y + hh], blocked);
      }
    });
    layer.querySelectorAll("[data-arrow]").forEach(function (node) {
      var arrow = stop.arrows[Number(node.getAttribute("data-arrow"))];
      var a = place(arrow.from[0], arrow.from[1]), b = place(arrow.to[0], arrow.to[1]);
      if (node.tagName.toLowerCase() === "line") {
        node.setAttribute("x1", a.x); node.setAttribute("y1", a.y);
        node.setAttribute("x2", b.x); node.setAttribute("y2", b.y);
      } else {
        node.style.left = a.x + "px";
        node.style.top = a.y + "px";
        node.classList.toggle("atlas-annot-above", b.y >= a.y); /* the label away from the head */
      }
    });
  }

  /* A highlight's label in the stage (over the image): above its rectangle, else below it, else inside it (top,
     then bottom), at its left end, else its right end; the first place wholly in the stage and
     clear of the tools, buttons, panel and navigator (`blocked`: [x0, y0, x1, y1] stage px),
     else the first one in the stage; none while the rectangle is out of view. `box` is the
     rectangle on screen, [x0, y0, x1, y1]. */
  placeLabel(node, box, blocked) {
    var container = this.view.viewer.container;
    var W = container.clientWidth, H = container.clientHeight, gap = 4, m = 4;
    var off = box[2] <= 0 || box[0] >= W || box[3] <= 0 || box[1] >= H; /* the box is out of view */
    node.style.visibility = off ? "hidden" : "";
    if (off) return;
    var lw = node.offsetWidth, lh = node.offsetHeight;
    var clamp = function (v, lo, hi) { return Math.max(lo, Math.min(v, hi)); };
    var top = Math.max(box[1], 0), bottom = Math.min(box[3], H); /* its part in the stage */
    var rows = [["above", box[1] - gap - lh], ["below", box[3] + gap],
      ["inside", top + gap], ["inside", bottom - gap - lh]];
    var ends = [box[0], box[2] - lw];
    var best = null;
    for (var i = 0; i < rows.length; i++) {
      var y = rows[i][1];
      if (y < m || y + lh > H - m) continue;
      for (var j = 0; j < ends.length; j++) {
        var x = clamp(ends[j], m, W - lw - m);
        var spot = { x: x, y: y, place: rows[i][0] };
        var clear = !blocked.some(function (r) {
          return x < r[2] && r[0] < x + lw && y < r[3] && r[1] < y + lh;
        });
        if (clear) { best = spot; i = rows.length; break; }
        if (!best) best = spot;
      }
    }
    if (!best) best = { x: clamp(box[0], m, W - lw - m), y: clamp(top + gap, m, H - lh - m), place: "inside" };
    node.style.left = best.x + "px";
    node.style.top = best.y + "px";
    node.setAttribute("data-place", best.place);
  }

  buildAnnotations(stop) {
    var layer = this.annot;
    layer.textContent = "";
    layer.setAttribute("data-stop", String(this.stop));
    var drawing = svg("svg", { "class": "atlas-annot-svg" });
    var defs = svg("defs");
    var id = this.view.id;
    var marker = svg("marker", { id: id + "-arrowhead", viewBox: "0 0 10 10", refX: "9", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
    marker.appendChild(svg("path", { d: "M0 0L10 5L0 10z", "class": "atlas-annot-head" }));
    defs.appendChild(marker);
    drawing.appendChild(defs);
    layer.appendChild(drawing);
    var label = function (text, kind, index) {
      if (!text) return;
      var tag = document.createElement("span");
      tag.className = "atlas-annot-label atlas-annot-" + kind + "-label";
      tag.setAttribute("data-" + kind, String(index));
      tag.textContent = text;
      layer.appendChild(tag);
    };
    (stop.highlights || []).forEach(function (h, i) {
      drawing.appendChild(svg("rect", { "class": "atlas-annot-box", "data-highlight": String(i), rx: "3" }));
      label(h.label, "highlight", i);
    });
    (stop.arrows || []).forEach(function (a, i) {
      drawing.appendChild(svg("line", { "class": "atlas-annot-arrow", "data-arrow": String(i),
        "marker-end": "url(#" + id + "-arrowhead)" }));
      label(a.label, "arrow", i);
    });
  }

  /* --- scroll-driven tours ---------------------------------------------------------------------- */

  initScroll() {
    var self = this;
    var texts = Array.prototype.slice.call(this.view.figure.querySelectorAll(".atlas-step"));
    if (!texts.length || !("IntersectionObserver" in window)) return;
    /* A step is current while it crosses the band around the middle of the window. */
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        var i = texts.indexOf(entry.target);
        if (i !== self.stop || !self.touring) self.go(i);
      });
      /* Scrolled back above the first step: the overview. */
      var first = texts[0].getBoundingClientRect();
      if (first.top > window.innerHeight * 0.5 && self.stop >= 0) self.go(-1);
    }, { rootMargin: "-45% 0px -45% 0px" });
    texts.forEach(function (text) { observer.observe(text); });
    this.scrollTexts = texts;
  }

  scrollToStep(i) {
    var texts = this.scrollTexts || [];
    if (i < 0 || !texts[i]) { this.go(i); return; }
    texts[i].scrollIntoView({ behavior: reducedMotion() ? "auto" : "smooth", block: "center" });
    this.go(i);
  }
}

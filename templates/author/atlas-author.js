/* atlas-author.js: the author mode of `atlas serve` (injected into served pages only; never part
   of a built site, see generator/site/serve.py).

   Every atlas viewer gets a button (and the shortcut Shift+C while the figure has focus) that
   copies the current view as a tour stop, in the atlas block's YAML:
     - rect: [x, y, w, h]
       caption: ""
   x, y, w, h: the visible rectangle in the atlas's finest image pixels (rounded, clipped to the
   image, as tour rectangles must be), so pasting it under `tour:` shows this very view. The text
   is also shown in the stage (and kept in the figure's data-author-stop) in case the clipboard
   is not available.
*/
(function () {
  "use strict";

  var ICON = '<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">' +
    '<path d="M5 2.5h6.5v9M3 5h6v8.5H3z" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linejoin="round"/></svg>';

  function stopText(viewer) {
    var r = viewer.visibleRect();
    var w = viewer.manifest.width, h = viewer.manifest.height;
    var x0 = Math.max(0, Math.round(r[0])), y0 = Math.max(0, Math.round(r[1]));
    var x1 = Math.min(w, Math.round(r[0] + r[2])), y1 = Math.min(h, Math.round(r[1] + r[3]));
    return "- rect: [" + [x0, y0, x1 - x0, y1 - y0].join(", ") + ']\n  caption: ""';
  }

  function show(viewer, text, copied) {
    var stage = viewer.stage;
    var note = stage.querySelector(".atlas-author-note");
    if (!note) {
      note = document.createElement("div");
      note.className = "atlas-author-note";
      note.setAttribute("role", "status");
      note.style.cssText = "position:absolute;right:0.5rem;bottom:0.5rem;z-index:6;max-width:calc(100% - 1rem);" +
        "padding:0.4rem 0.6rem;background:#1d1d1f;color:#fff;border-radius:4px;font:12px/1.4 monospace";
      stage.appendChild(note);
    }
    note.textContent = "";
    var head = document.createElement("div");
    head.textContent = copied ? "Copied as a tour stop:" : "Copy this tour stop (the clipboard is unavailable):";
    var pre = document.createElement("pre");
    pre.style.cssText = "margin:0.2rem 0 0;padding:0;background:none;color:inherit;font:inherit;white-space:pre;user-select:all";
    pre.textContent = text;
    note.appendChild(head);
    note.appendChild(pre);
    note.hidden = false;
    clearTimeout(note.timer);
    note.timer = setTimeout(function () { note.hidden = true; }, 12000);
  }

  function copyStop(viewer) {
    var text = stopText(viewer);
    viewer.figure.setAttribute("data-author-stop", text);
    var done = function (ok) { show(viewer, text, ok); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    } else {
      done(false);
    }
  }

  function equip(viewer) {
    var controls = viewer.stage.querySelector(".atlas-controls");
    if (!controls || controls.querySelector(".atlas-author-copy")) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "atlas-author-copy";
    button.setAttribute("aria-label", "Copy the current view as a tour stop (Shift+C)");
    button.title = "Copy the current view as a tour stop (Shift+C)";
    button.innerHTML = ICON;
    button.addEventListener("click", function () { copyStop(viewer); });
    controls.insertBefore(button, controls.firstChild);
    viewer.figure.addEventListener("keydown", function (event) {
      if (event.key === "C" && event.shiftKey && !event.ctrlKey && !event.metaKey && !event.altKey) {
        if (event.target.closest && event.target.closest("input, textarea, select")) return;
        copyStop(viewer);
        event.preventDefault();
      }
    });
  }

  /* Equip each viewer once it is ready (viewers start lazily, as they near the viewport). */
  function start() {
    var viewers = window.atlasViewers || {};
    Object.keys(viewers).forEach(function (id) {
      var viewer = viewers[id];
      var check = function () {
        if (viewer.figure.getAttribute("data-state") !== "ready") return false;
        equip(viewer);
        return true;
      };
      if (check()) return;
      var watch = new MutationObserver(function () { if (check()) watch.disconnect(); });
      watch.observe(viewer.figure, { attributes: true, attributeFilter: ["data-state"] });
    });
  }

  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
})();

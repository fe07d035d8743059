/* The theme toggle: light or dark, starting from the reader's system preference; a choice is
   remembered in localStorage (the inline script in <head> applies it before the first paint). */
(function () {
  "use strict";
  var root = document.documentElement;
  var button = document.querySelector(".theme-toggle");
  if (!button) return;
  var system = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function current() {
    var chosen = root.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") return chosen;
    return system && system.matches ? "dark" : "light";
  }

  function show() {
    var dark = current() === "dark";
    button.setAttribute("aria-pressed", dark ? "true" : "false");
  }

  button.addEventListener("click", function () {
    var next = current() === "dark" ? "light" : "dark";
    root.setAttribute("data-theme", next);
    try { localStorage.setItem("atlas-theme", next); } catch (e) { /* private mode: not kept */ }
    show();
  });
  if (system && system.addEventListener) system.addEventListener("change", show);
  button.hidden = false;
  show();
})();

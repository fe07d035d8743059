/* atlas-viewer-util.js: small stateless helpers the viewer's modules import.

   Everything here is a pure function of its arguments (plus the reader's motion preference),
   so any module may import it without sharing state. */

var motion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;

/* Whether the reader asked for no animation (prefers-reduced-motion). */
export function reducedMotion() { return !!(motion && motion.matches); }

export function fetchJSON(url) {
  return fetch(url).then(function (response) {
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    return response.json();
  });
}

/* Finest image px per cell of a level (viewer.json levels[i]). */
export function cellSize(level) { return level.cell_px * (level.scale || 1); }

/* "40 × 40" (no line break inside). */
export function gridName(g) { return g + "\u00a0×\u00a0" + g; }

/* A value for people: whole numbers from 100, two decimals from 1, else two digits. */
export function formatValue(v) {
  var a = Math.abs(v);
  return a >= 100 || a === 0 ? String(Math.round(v)) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

/* A new element with a class and text. */
export function el(tag, className, text) {
  var node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/* The atlas background colour "#rgb" / "#rrggbb" as [r, g, b] (white when unreadable). */
export function parseColour(text) {
  var hex = String(text).replace("#", "");
  if (hex.length === 3) hex = hex.replace(/./g, "$&$&");
  var n = parseInt(hex, 16);
  return isFinite(n) ? [(n >> 16) & 255, (n >> 8) & 255, n & 255] : [255, 255, 255];
}

export function rgba(c, a) { return "rgba(" + c[0] + "," + c[1] + "," + c[2] + "," + a + ")"; }

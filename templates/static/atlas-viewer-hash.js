/* atlas-viewer-hash.js: the page's viewers and the view of each in the URL hash.

   `viewers` maps figure ids to viewers (atlas-viewer.js fills it; it is window.atlasViewers).
   The URL hash holds each viewer's view as "&"-separated <figure>.<key>=<value> pairs, e.g.
     #fig.xywh=800,800,1600,1600&fig.level=40&fig.class=207&fig.cell=40:3,4&fig.density=2
   (xywh: the visible image rectangle; level: the grid shown; class: the heat-mapped class;
   cell: the selected cell, <grid>:<col>,<row>; density: the icon density), or #fig.step=3
   while a tour is on (1-based). Pairs of other figures and anything else in the hash are kept.
   A viewer says what it holds with hashPairs() and shows an entry with applyHash()
   (atlas-viewer-view.js); `touched` and `image` say whether it has pairs to write. */

/* Figure id -> viewer, for every atlas figure of the page. */
export var viewers = {};

/* {figure: {key: value}} from location.hash, plus the foreign parts kept verbatim. */
export function readHash() {
  var out = {};
  var foreign = [];
  location.hash.replace(/^#/, "").split("&").forEach(function (part) {
    var match = /^([A-Za-z][A-Za-z0-9_-]*)\.([a-z]+)=([^&]*)$/.exec(part);
    if (match && viewers[match[1]]) {
      (out[match[1]] = out[match[1]] || {})[match[2]] = decodeURIComponent(match[3]);
    } else if (part) {
      foreign.push(part);
    }
  });
  Object.defineProperty(out, "foreign", { value: foreign });
  return out;
}

/* `count` comma-separated numbers, or null. */
export function numbers(text, count) {
  var values = String(text || "").split(",").map(Number);
  return values.length === count && values.every(isFinite) ? values : null;
}

/* Write every moved viewer's pairs (history.replaceState: no history entry per move). */
export function writeHash() {
  if (!history.replaceState) return;
  var state = readHash();
  /* Keep foreign pairs, but not a plain anchor ("#references"): once the reader has moved
     an atlas the hash is about views, and "#anchor&fig.xywh=..." would match no element. */
  var parts = state.foreign.filter(function (part) { return !/^[A-Za-z][\w-]*$/.test(part); });
  Object.keys(viewers).forEach(function (id) {
    var v = viewers[id];
    if (v.touched && v.image) parts = parts.concat(v.hashPairs());
    else if (state[id]) {
      Object.keys(state[id]).forEach(function (key) { parts.push(id + "." + key + "=" + state[id][key]); });
    }
  });
  var hash = parts.length ? "#" + parts.join("&") : "";
  if (hash !== location.hash) history.replaceState(history.state, "", hash || location.pathname + location.search);
}

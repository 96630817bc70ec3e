"""The gallery's inline style sheet and script (kept apart from the HTML writer).

The script runs in ``<head>``: it defines ``batchgenRows``, which each data part calls with
its records (``<script defer>``, in order, before ``DOMContentLoaded``), and listens for the
players' media events with capturing listeners on the document, so that none is missed. Once
the page is parsed it reads the page's configuration (the records' field positions, the
columns), then filters (status, decision, a text search over the prompt and the user's
columns), sorts, and builds the cards of the takes that pass, ``PAGE`` at a time while the
end of the list is within a screen or so of the view (as the reviewer scrolls; or "Show
more"). Every text is set with
``textContent``; addresses come only from the records' relative sources and http(s) links.
"""

from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """
:root { font-family: system-ui, sans-serif; color: #1f2328; background: #f6f8fa; }
body { margin: 0 auto; max-width: 1600px; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.4rem; margin: .2rem 0 .8rem; }
dl.figures { display: flex; flex-wrap: wrap; gap: .4rem 1.4rem; margin: 0 0 .6rem; }
dl.figures div { display: flex; gap: .35rem; }
#summary { font-size: 1.15rem; }
details { margin: 0 0 1rem; color: #59636e; font-size: .9rem; }
dt { color: #59636e; } dd { margin: 0; font-weight: 600; }
.command { font-family: ui-monospace, monospace; font-size: .85rem; color: #59636e;
  overflow-wrap: anywhere; margin: .3rem 0 0; }
.tools { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: center;
  margin-bottom: .6rem; }
#search { font: inherit; padding: .3rem .6rem; min-width: 18rem; border: 1px solid #d1d9e0;
  border-radius: .3rem; }
select { font: inherit; }
#shown { color: #59636e; font-size: .9rem; }
nav { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: .6rem; }
nav#decisions { margin-bottom: 1rem; }
nav button { border: 1px solid #d1d9e0; background: #fff; border-radius: 1rem;
  padding: .25rem .8rem; cursor: pointer; font: inherit; }
nav button[aria-pressed="true"] { background: #1f2328; color: #fff; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr));
  gap: 1rem; align-items: start; }
.card { background: #fff; border: 1px solid #d1d9e0; border-radius: .5rem; padding: .8rem; }
.card.set-back { opacity: .55; filter: grayscale(.8); border-style: dashed; }
.card.set-back:hover, .card.set-back:focus-within { opacity: .9; filter: none; }
.meta { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; font-size: .85rem; }
.badge { border-radius: .3rem; padding: .05rem .45rem; font-weight: 600; }
.done { background: #c6efce; color: #006100; } .failed { background: #ffc7ce; color: #9c0006; }
.waiting { background: #ffeb9c; color: #9c5700; }
.attention { background: #fcd5b4; color: #974706; }
.deleted { background: #eaeef2; color: #59636e; }
.decision { border: 2px solid currentColor; border-radius: .3rem; padding: 0 .4rem;
  font-weight: 700; }
.decision.approve { color: #006100; } .decision.reject { color: #9c0006; }
.decision.regenerate { color: #9c5700; } .decision.replaced { color: #59636e; }
.lineage { font-size: .85rem; color: #59636e; margin: .4rem 0 0; }
.prompt { white-space: pre-wrap; overflow-wrap: anywhere; margin: .6rem 0; }
.used { background: #fff8c5; border-left: 3px solid #d4a72c; padding: .3rem .5rem;
  font-size: .85rem; white-space: pre-wrap; overflow-wrap: anywhere; }
dl.cols { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .6rem;
  font-size: .85rem; margin: .4rem 0; }
dl.cols div { display: contents; }
dl.cols dd { font-weight: 400; overflow-wrap: anywhere; white-space: pre-wrap; }
.error { white-space: pre-wrap; overflow-wrap: anywhere; color: #9c0006; font-size: .9rem; }
figure { margin: .5rem 0 0; }
video { width: 100%; max-height: 420px; background: #000; border-radius: .3rem; }
figcaption { font-size: .8rem; color: #59636e; overflow-wrap: anywhere; }
.remote { font-size: .8rem; overflow-wrap: anywhere; }
.more { text-align: center; margin: 1.5rem 0; }
#more { font: inherit; padding: .4rem 1.2rem; border: 1px solid #d1d9e0; border-radius: .3rem;
  background: #fff; cursor: pointer; }
"""

JS = """
"use strict";
(function () {
  var records = [];
  window.batchgenRows = function (part) {
    for (var i = 0; i < part.length; i++) records.push(part[i]);
  };
  function fmt(s) {
    if (!isFinite(s)) return "";
    s = Math.round(s);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function mark(v, state) {
    v.dataset.state = state;
    var out = v.parentNode && v.parentNode.querySelector(".duration");
    if (out) out.textContent = state === "loaded" ? fmt(v.duration) : "cannot play this file";
  }
  document.addEventListener("loadedmetadata", function (e) {
    if (e.target.tagName === "VIDEO") mark(e.target, "loaded");
  }, true);
  document.addEventListener("error", function (e) {
    if (e.target.tagName === "VIDEO") mark(e.target, "error");
  }, true);

  var PAGE = 60;
  var F = {}, conf, main, more, texts = [], order = [], shown = [], rendered = 0;
  var view = {filter: "all", decision: "all", query: "", sort: "row"};
  var REVIEW = {approve: "approved", reject: "rejected", regenerate: "to regenerate"};
  var RANK = {approve: 0, regenerate: 1, none: 2, replaced: 3, reject: 4};
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function textOf(i) {
    if (texts[i] === undefined) {
      var r = records[i];
      texts[i] = [r[F.prompt], r[F.used], r[F.mode], r[F.ratio]].concat(r[F.cols])
        .join("\\n").toLowerCase();
    }
    return texts[i];
  }
  function passes(i) {
    var r = records[i], f = view.filter, ok;
    if (f === "deleted") ok = r[F.deleted] === 1;
    else if (r[F.deleted] === 1) ok = false;
    else ok = f === "all" || r[F.status] === f || (f === "attention" && r[F.attention] === 1);
    if (ok && view.decision !== "all") ok = r[F.deleted] === 0 && r[F.review] === view.decision;
    return ok && (!view.query || textOf(i).indexOf(view.query) >= 0);
  }
  function sortKey(i, by) {
    var r = records[i];
    if (by === "status") return r[F.status];
    if (by === "decision") return String(RANK[r[F.review]]);
    var v = r[F.cols][Number(by.slice(3))];
    return v === undefined ? "" : v;
  }
  function sortOrder() {
    order = records.map(function (_, i) { return i; });
    var by = view.sort;
    if (by === "row") {
      order.sort(function (a, b) {
        return records[a][F.deleted] - records[b][F.deleted] || a - b;
      });
      return;
    }
    var keys = order.map(function (i) { return sortKey(i, by); });
    order.sort(function (a, b) {
      return (records[a][F.deleted] - records[b][F.deleted]) ||
        collator.compare(keys[a], keys[b]) || (a - b);
    });
  }
  function label(r) {
    var where = "row " + r[F.row];
    if (r[F.takes] > 1 || r[F.take] > 1) {
      where += " \\u00b7 take " + r[F.take] + " of " + r[F.takes];
    }
    return where;
  }
  function player(file) {
    var fig = el("figure"), cap = el("figcaption");
    if (!file[0]) { cap.textContent = file[2]; fig.appendChild(cap); return fig; }
    var v = el("video");
    v.controls = true;
    v.preload = "metadata";
    if (file[1]) v.poster = file[1];
    v.src = file[1] ? file[0] : file[0] + "#t=0.1";
    var a = el("a", "", file[2]);
    a.href = file[0];
    cap.appendChild(a);
    cap.appendChild(document.createTextNode(" "));
    cap.appendChild(el("span", "duration"));
    fig.appendChild(v);
    fig.appendChild(cap);
    return fig;
  }
  function card(i) {
    var r = records[i], c = el("article", "card"), review = r[F.review];
    if (review === "reject" || review === "replaced") c.classList.add("set-back");
    c.dataset.row = r[F.row];
    c.dataset.take = r[F.take];
    c.dataset.key = r[F.key];
    c.dataset.status = r[F.status];
    c.dataset.review = review;
    var meta = el("div", "meta");
    meta.appendChild(el("span", "where", label(r)));
    meta.appendChild(el("span", "badge " + r[F.tone], r[F.status]));
    if (r[F.deleted]) meta.appendChild(el("span", "badge deleted", "row left the manifest"));
    if (review === "replaced") {
      meta.appendChild(el("span", "decision replaced",
        "replaced by take " + r[F.replacedBy].join(", ")));
    } else if (REVIEW[review]) {
      meta.appendChild(el("span", "decision " + review, REVIEW[review]));
    }
    var mode = el("span", "request", r[F.mode]), ratio = el("span", "request", r[F.ratio]);
    if (conf.modeCol >= 0) mode.dataset.col = conf.modeCol;
    if (conf.ratioCol >= 0) ratio.dataset.col = conf.ratioCol;
    meta.appendChild(mode);
    meta.appendChild(ratio);
    c.appendChild(meta);
    if (r[F.replaces]) {
      c.appendChild(el("p", "lineage", "take " + r[F.take] + " replaces take " + r[F.replaces]));
    }
    c.appendChild(el("p", "prompt", r[F.prompt]));
    if (r[F.used]) {
      var u = el("p", "used");
      u.appendChild(el("strong", "", "Prompt changed after this video was made."));
      u.appendChild(document.createTextNode(" The video shows: "));
      u.appendChild(el("span", "used-prompt", r[F.used]));
      c.appendChild(u);
    }
    if (r[F.madeWith]) {
      var m = el("p", "used");
      m.appendChild(el("strong", "", "Edited after this video was made:"));
      m.appendChild(document.createTextNode(" "));
      m.appendChild(el("span", "made-with", r[F.madeWith]));
      c.appendChild(m);
    }
    var dl = el("dl", "cols");
    conf.columns.forEach(function (name, col) {
      if (col === conf.modeCol || col === conf.ratioCol) return;
      var d = el("div"), dd = el("dd", "", r[F.cols][col] || "");
      dd.dataset.col = col;
      d.appendChild(el("dt", "", name));
      d.appendChild(dd);
      dl.appendChild(d);
    });
    c.appendChild(dl);
    if (r[F.error]) c.appendChild(el("p", "error", r[F.error]));
    r[F.files].forEach(function (file) { c.appendChild(player(file)); });
    r[F.links].forEach(function (link) {
      var p = el("p", "remote");
      if (link[0]) {
        var a = el("a", "", link[1]);
        a.href = link[0];
        a.rel = "noreferrer";
        p.appendChild(a);
      } else {
        p.textContent = link[1];
      }
      c.appendChild(p);
    });
    return c;
  }
  function renderMore() {
    var end = Math.min(shown.length, rendered + PAGE), frag = document.createDocumentFragment();
    for (var k = rendered; k < end; k++) frag.appendChild(card(shown[k]));
    main.appendChild(frag);
    rendered = end;
    more.hidden = rendered >= shown.length;
    more.textContent = "Show more (" + (shown.length - rendered) + " more)";
  }
  var ticking = false;
  function fill() {
    ticking = false;
    if (!more.hidden && more.getBoundingClientRect().top < window.innerHeight + 1200) {
      renderMore();
      schedule();
    }
  }
  function schedule() {
    if (!ticking) { ticking = true; requestAnimationFrame(fill); }
  }
  function apply() {
    shown = order.filter(passes);
    var total = 0;
    for (var i = 0; i < records.length; i++) total += records[i][F.deleted] === 0;
    document.getElementById("shown").textContent =
      shown.length + " of " + total + " takes shown";
    document.getElementById("empty").hidden = shown.length > 0;
    main.textContent = "";
    rendered = 0;
    renderMore();
    schedule();
  }
  function chips(nav, attr, key) {
    nav.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-" + attr + "]");
      if (!b) return;
      view[key] = b.getAttribute("data-" + attr);
      nav.querySelectorAll("button").forEach(function (x) {
        x.setAttribute("aria-pressed", String(x === b));
      });
      apply();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    conf = JSON.parse(document.getElementById("config").textContent);
    conf.fields.forEach(function (name, i) { F[name] = i; });
    main = document.getElementById("rows");
    more = document.getElementById("more");
    chips(document.getElementById("filters"), "filter", "filter");
    chips(document.getElementById("decisions"), "decision", "decision");
    var pending;
    document.getElementById("search").addEventListener("input", function (e) {
      var q = e.target.value.trim().toLowerCase();
      clearTimeout(pending);
      if (records.length <= 5000) { view.query = q; apply(); return; }
      pending = setTimeout(function () { view.query = q; apply(); }, 150);  // typing on
    });
    document.getElementById("sort").addEventListener("change", function (e) {
      view.sort = e.target.value;
      sortOrder();
      apply();
    });
    more.addEventListener("click", renderMore);
    window.addEventListener("scroll", schedule, {passive: true});
    window.addEventListener("resize", schedule);
    sortOrder();
    apply();
    document.body.dataset.ready = String(records.length);
  });
})();
"""

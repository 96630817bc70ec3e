"""The gallery's inline style sheet and script (kept apart from the HTML writer).

The script runs in ``<head>`` with capturing listeners on the document, so that no media
event is missed however early a player fires it; everything else waits for the DOM. It
filters by status, searches the prompt and the user's columns (each ``[data-col]`` element:
the list's values, and the mode and ratio in the top line), sorts the cards, and promotes
lazy players (poster, then metadata) when they are scrolled near.
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
nav { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: 1rem; }
nav button { border: 1px solid #d1d9e0; background: #fff; border-radius: 1rem;
  padding: .25rem .8rem; cursor: pointer; font: inherit; }
nav button[aria-pressed="true"] { background: #1f2328; color: #fff; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr));
  gap: 1rem; align-items: start; }
.card { background: #fff; border: 1px solid #d1d9e0; border-radius: .5rem; padding: .8rem; }
.card[hidden] { display: none; }
.meta { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; font-size: .85rem; }
.badge { border-radius: .3rem; padding: .05rem .45rem; font-weight: 600; }
.done { background: #c6efce; color: #006100; } .failed { background: #ffc7ce; color: #9c0006; }
.waiting { background: #ffeb9c; color: #9c5700; }
.attention { background: #fcd5b4; color: #974706; }
.deleted { background: #eaeef2; color: #59636e; }
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
"""

JS = """
"use strict";
(function () {
  function fmt(s) {
    if (!isFinite(s)) return "";
    s = Math.round(s);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function mark(v, state) {
    v.dataset.state = state;
    var out = v.parentNode.querySelector(".duration");
    if (out) out.textContent = state === "loaded" ? fmt(v.duration) : "cannot play this file";
  }
  document.addEventListener("loadedmetadata", function (e) {
    if (e.target.tagName === "VIDEO") mark(e.target, "loaded");
  }, true);
  document.addEventListener("error", function (e) {
    if (e.target.tagName === "VIDEO") mark(e.target, "error");
  }, true);
  var view = {filter: "all", query: ""};
  function text(card) {
    if (card._text === undefined) {
      var parts = [];
      card.querySelectorAll(".prompt, .used-prompt, [data-col]").forEach(function (n) {
        parts.push(n.textContent);
      });
      card._text = parts.join("\\n").toLowerCase();
    }
    return card._text;
  }
  function passes(card) {
    var f = view.filter, d = card.dataset, ok;
    if (f === "deleted") ok = d.deleted === "1";
    else if (d.deleted === "1") ok = false;
    else ok = f === "all" || d.status === f || (f === "attention" && d.attention === "1");
    return ok && (!view.query || text(card).indexOf(view.query) >= 0);
  }
  function apply(cards) {
    var shown = 0, total = 0;
    cards.forEach(function (c) {
      c.hidden = !passes(c);
      shown += !c.hidden;
      total += c.dataset.deleted === "0";
    });
    document.getElementById("shown").textContent = shown + " of " + total + " rows shown";
    document.getElementById("empty").hidden = shown > 0;
  }
  function sortKey(card, by) {
    if (by === "row") return "";
    if (by === "status") return card.dataset.status;
    var cell = card.querySelector('[data-col="' + by.slice(3) + '"]');
    return cell ? cell.textContent : "";
  }
  function sort(main, cards, by) {
    var order = Array.prototype.slice.call(cards);
    order.sort(function (a, b) {
      return (a.dataset.deleted - b.dataset.deleted) ||
        sortKey(a, by).localeCompare(sortKey(b, by), undefined, {numeric: true}) ||
        (a.dataset.row - b.dataset.row);
    });
    order.forEach(function (c) { main.appendChild(c); });
  }
  function promote(v) {
    if (v.dataset.poster) v.poster = v.dataset.poster;
    v.removeAttribute("data-lazy");
    v.preload = "metadata";
    v.load();
  }
  document.addEventListener("DOMContentLoaded", function () {
    var nav = document.getElementById("filters");
    var main = document.getElementById("rows");
    var cards = document.querySelectorAll(".card");
    nav.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-filter]");
      if (!b) return;
      view.filter = b.dataset.filter;
      nav.querySelectorAll("button").forEach(function (x) {
        x.setAttribute("aria-pressed", String(x === b));
      });
      apply(cards);
    });
    document.getElementById("search").addEventListener("input", function (e) {
      view.query = e.target.value.trim().toLowerCase();
      apply(cards);
    });
    document.getElementById("sort").addEventListener("change", function (e) {
      sort(main, cards, e.target.value);
    });
    apply(cards);
    document.querySelectorAll("video").forEach(function (v) {
      if (v.error) mark(v, "error");
      else if (v.readyState >= 1) mark(v, "loaded");
    });
    if (!("IntersectionObserver" in window)) {
      document.querySelectorAll("video[data-lazy]").forEach(promote);
      return;
    }
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) {
        if (!en.isIntersecting) return;
        io.unobserve(en.target);
        promote(en.target);
      });
    }, {rootMargin: "800px"});
    document.querySelectorAll("video[data-lazy]").forEach(function (v) { io.observe(v); });
  });
})();
"""

/* Offline search over every page of the handbook: reads window.KB_SEARCH_INDEX (search-index.js). */
(function () {
  "use strict";
  var input = document.getElementById("search-input");
  var list = document.getElementById("search-results");
  var docs = window.KB_SEARCH_INDEX || [];
  var root = document.body.getAttribute("data-root") || "./";
  if (!input || !list) { return; }
  // the page's Content-Security-Policy allows no inline handler, so the form is held back here
  if (input.form) { input.form.addEventListener("submit", function (e) { e.preventDefault(); }); }

  function fold(text) {
    return String(text || "").toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "");
  }
  var prepared = docs.map(function (d) {
    return { doc: d, title: fold(d.title), aliases: fold((d.aliases || []).join(" | ")),
             ref: fold(d.ref), summary: fold(d.summary) };
  });

  function score(p, terms) {
    var total = 0;
    for (var i = 0; i < terms.length; i++) {
      var t = terms[i], s = 0;
      if (p.title === t) { s = 100; }
      else if (p.title.indexOf(t) === 0) { s = 60; }
      else if (p.title.indexOf(t) >= 0) { s = 40; }
      else if (p.aliases.indexOf(t) >= 0) { s = 30; }
      else if (p.ref.indexOf(t) >= 0) { s = 20; }
      else if (p.summary.indexOf(t) >= 0) { s = 8; }
      if (!s) { return 0; }
      total += s;
    }
    return total + (p.doc.kind === "page" ? 1 : 0);
  }

  function search(query) {
    var terms = fold(query).split(/\s+/).filter(Boolean);
    if (!terms.length) { return []; }
    return prepared.map(function (p) { return { p: p, s: score(p, terms) }; })
      .filter(function (x) { return x.s > 0; })
      .sort(function (a, b) { return b.s - a.s || (a.p.title < b.p.title ? -1 : 1); })
      .slice(0, 20).map(function (x) { return x.p.doc; });
  }

  function show(query) {
    var hits = search(query);
    list.textContent = "";
    hits.forEach(function (d) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = root + d.url;
      a.textContent = d.title;
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = d.kind === "page" ? "" : d.kind.replace("_", " ");
      a.appendChild(kind);
      if (d.summary) {
        var sum = document.createElement("span");
        sum.className = "summary";
        sum.textContent = d.summary;
        a.appendChild(sum);
      }
      li.appendChild(a);
      list.appendChild(li);
    });
    list.hidden = hits.length === 0;
  }

  input.addEventListener("input", function () { show(input.value); });
  input.addEventListener("keydown", function (e) {
    var first = list.querySelector("a");
    if (e.key === "Enter" && first) { window.location.href = first.href; }
    if (e.key === "Escape") { list.hidden = true; }
  });
  var q = new URLSearchParams(window.location.search).get("q");
  if (q) { input.value = q; show(q); }
})();

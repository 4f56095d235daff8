"""The page's own style and script: inline, no framework, no request leaves the page.

The script drives one thing, the case table: its rows are JSON in the page
(``<script type="application/json" id="cases">``), drawn a page of
:data:`PAGE_ROWS` at a time (a 25,600-case run is not 25,600 DOM rows),
filtered by a text box (every word must appear in the row) and sorted by
clicking a column head (numbers as numbers; again to reverse).
"""

PAGE_ROWS = 200

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 1.2em 3em; color: #1d1d1f; }
h1 { font-size: 1.6em; margin: 1em 0 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em;
     margin-top: 2em; } h3 { margin-bottom: 0.3em; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.card { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }
.card dt { color: #555; } .card dd { margin: 0; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5em 0.9em; margin: 0.6em 0; }
.bad { background: #fdecea; border-left: 4px solid #d93025; padding: 0.5em 0.9em; margin: 0.6em 0; }
.ok { color: #137333; } .fail { color: #c5221f; } .mixed { color: #b06000; } .dim { color: #777; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
#cases-table th { cursor: pointer; user-select: none; white-space: nowrap; }
#cases-table th.sorted-asc::after { content: " \\25B2"; } #cases-table th.sorted-desc::after { content: " \\25BC"; }
.controls { display: flex; gap: 1em; align-items: center; margin: 0.5em 0; }
.controls input { font: inherit; padding: 3px 6px; width: 22em; }
nav a { margin-right: 1em; }
"""

JS = """
(function () {
  var source = document.getElementById("cases-data");
  if (!source) return;
  var data = JSON.parse(source.textContent);
  var columns = data.columns, rows = data.rows, shown = rows, page = 0, sortCol = -1, sortDir = 1;
  var PAGE = %(page_rows)d;
  var table = document.getElementById("cases-table"), info = document.getElementById("cases-info");
  var head = table.createTHead().insertRow(), body = table.createTBody();
  columns.forEach(function (c, i) {
    var th = document.createElement("th");
    th.textContent = c;
    th.addEventListener("click", function () { sortBy(i); });
    head.appendChild(th);
  });
  function key(v) { return (typeof v === "number") ? v : (v === null ? "" : String(v).toLowerCase()); }
  function sortBy(i) {
    sortDir = (sortCol === i) ? -sortDir : 1; sortCol = i;
    shown = shown.slice().sort(function (a, b) {
      var x = key(a[i]), y = key(b[i]);
      if (x === "" && y !== "") return 1; if (y === "" && x !== "") return -1;
      if (typeof x === "number" && typeof y === "number") return (x - y) * sortDir;
      return (String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0) * sortDir;
    });
    Array.prototype.forEach.call(head.cells, function (th, j) {
      th.className = (j === i) ? (sortDir > 0 ? "sorted-asc" : "sorted-desc") : "";
    });
    page = 0; draw();
  }
  function filter(text) {
    var words = text.toLowerCase().split(/\\s+/).filter(Boolean);
    shown = rows.filter(function (r) {
      var line = r.join(" ").toLowerCase();
      return words.every(function (w) { return line.indexOf(w) >= 0; });
    });
    if (sortCol >= 0) { sortDir = -sortDir; sortBy(sortCol); } else { page = 0; draw(); }
  }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return (Math.abs(v) >= 1000 || Number.isInteger(v)) ? String(v) : v.toPrecision(3);
    return String(v);
  }
  function draw() {
    body.innerHTML = "";
    var start = page * PAGE, end = Math.min(shown.length, start + PAGE);
    for (var k = start; k < end; k++) {
      var tr = body.insertRow();
      shown[k].forEach(function (v) {
        var td = tr.insertCell(); td.textContent = fmt(v);
        if (typeof v === "number") td.className = "num";
      });
    }
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    info.textContent = shown.length + " of " + rows.length + " cases; page " + (page + 1) + " of " + pages;
    document.getElementById("cases-prev").disabled = page === 0;
    document.getElementById("cases-next").disabled = page + 1 >= pages;
  }
  document.getElementById("cases-filter").addEventListener("input", function (e) { filter(e.target.value); });
  document.getElementById("cases-prev").addEventListener("click", function () { page--; draw(); });
  document.getElementById("cases-next").addEventListener("click", function () { page++; draw(); });
  draw();
})();
"""

//! The HTML report: one self-contained file (no network) with the flame graph, the summary's
//! tables (allocation sites, the program's functions; or the changed stacks of a diff), one
//! search over all of them, and columns sorted by a click.
//!
//! The graph is inferno's SVG, embedded whole in an `<iframe srcdoc>` so that its own script
//! (zoom, tooltips, search) runs unchanged beside the page's. The page's search runs inferno's
//! search in the graph and filters the tables' rows; its result ("graph: Matched: 12.5% · sites:
//! 2 of 10 rows") is written into `#result`. `report.html?s=TERM` searches on load and
//! `?sort=TABLE.COLUMN` sorts (`sites.bytes`), which is how a link keeps a view and a headless
//! browser checks a report.
//!
//! ```
//! use allocflame_core::html::{Column, Table};
//! let t = Table {
//!     id: "sites".into(),
//!     heading: "Allocation sites".into(),
//!     columns: vec![Column::number("allocations"), Column::text("site")],
//!     rows: vec![vec!["3".into(), "parse <T>".into()]],
//! };
//! let page = allocflame_core::html::page("Allocations of app", "exact", b"<svg></svg>", &[t]);
//! assert!(page.contains(">parse &lt;T&gt;</td>"));
//! assert!(!page.contains("http"), "no link out of the file");
//! ```

use crate::report::{StackChange, Summary};

/// A column of a [`Table`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The heading.
    pub name: String,
    /// Whether the cells are numbers (sorted as numbers, largest first); text cells are
    /// searched.
    pub numeric: bool,
}

impl Column {
    /// A column of numbers.
    pub fn number(name: &str) -> Column {
        Column {
            name: name.into(),
            numeric: true,
        }
    }

    /// A column of text.
    pub fn text(name: &str) -> Column {
        Column {
            name: name.into(),
            numeric: false,
        }
    }
}

/// A table of the report: rows of cells as text, one per column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The element id (`sites`), which names it in the search result.
    pub id: String,
    /// The heading above it.
    pub heading: String,
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows, in the order first shown.
    pub rows: Vec<Vec<String>>,
}

/// The tables of a profile's summary: the allocation sites (with source lines) and the
/// program's functions by total.
pub fn summary_tables(summary: &Summary) -> Vec<Table> {
    let bytes = summary.bytes.is_some();
    let weight_columns = |rest: &[Column]| {
        let mut c = vec![Column::number("allocations"), Column::number("%")];
        if bytes {
            c.push(Column::number("bytes"));
        }
        c.extend_from_slice(rest);
        c
    };
    let weight_cells = |allocs: u64, percent: f64, b: u64| {
        let mut r = vec![allocs.to_string(), format!("{percent:.2}")];
        if bytes {
            r.push(b.to_string());
        }
        r
    };
    let sites = Table {
        id: "sites".into(),
        heading: "Allocation sites (the code that called the allocator)".into(),
        columns: weight_columns(&[
            Column::text("site"),
            Column::text("source line"),
            Column::text("calls"),
        ]),
        rows: summary
            .top_sites
            .iter()
            .map(|s| {
                let mut r = weight_cells(s.allocs, s.percent, s.bytes);
                r.push(s.function.clone());
                r.push(s.location.clone().unwrap_or_default());
                r.push(s.calls.clone());
                r
            })
            .collect(),
    };
    let mut heading = "Program functions by total (on the stack)".to_owned();
    if !summary.shared_frames.is_empty() {
        heading.push_str(&format!(
            "; left out, on every stack: {}",
            summary.shared_frames.join(", ")
        ));
    }
    let program = Table {
        id: "program".into(),
        heading,
        columns: weight_columns(&[Column::text("function")]),
        rows: summary
            .top_program
            .iter()
            .map(|f| {
                let mut r = weight_cells(f.allocs, f.percent, f.bytes);
                r.push(f.function.clone());
                r
            })
            .collect(),
    };
    vec![sites, program]
}

/// The table of a diff: each changed stack with its weight before and after, largest growth
/// first.
pub fn diff_table(changes: &[StackChange], count_name: &str) -> Table {
    Table {
        id: "changes".into(),
        heading: format!("Changed stacks ({count_name})"),
        columns: vec![
            Column::number("change"),
            Column::number("before"),
            Column::number("after"),
            Column::text("stack"),
        ],
        rows: changes
            .iter()
            .map(|c| {
                vec![
                    format!("{:+}", c.delta),
                    c.before.to_string(),
                    c.after.to_string(),
                    c.stack.clone(),
                ]
            })
            .collect(),
    }
}

/// The whole report page: `title`, `subtitle`, the graph `svg` and `tables`.
pub fn page(title: &str, subtitle: &str, svg: &[u8], tables: &[Table]) -> String {
    let svg = String::from_utf8_lossy(svg);
    // The XML prologue means nothing in an HTML document; the SVG itself is kept whole.
    let svg = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => &svg[..],
    };
    let graph = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>html,body{{margin:0}} svg{{width:100%;display:block}}</style></head><body>{svg}</body></html>"
    );
    let mut out = String::with_capacity(graph.len() * 2 + 8192);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str(&format!("<title>{}</title>\n", escape(title)));
    out.push_str(STYLE);
    out.push_str("</head><body>\n");
    out.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"sub\">{}</p>\n",
        escape(title),
        escape(subtitle)
    ));
    out.push_str(
        "<form id=\"find\"><input id=\"term\" size=\"40\" placeholder=\"search functions (regular expression)\" aria-label=\"search\"> <button type=\"submit\">Search</button> <button type=\"button\" id=\"reset\">Reset</button> <output id=\"result\"></output></form>\n",
    );
    out.push_str(&format!(
        "<iframe id=\"graph\" title=\"flame graph\" srcdoc=\"{}\"></iframe>\n",
        escape(&graph)
    ));
    for t in tables {
        out.push_str(&format!(
            "<h2>{}</h2>\n<table id=\"{}\"><thead><tr>",
            escape(&t.heading),
            escape(&t.id)
        ));
        for c in &t.columns {
            out.push_str(&format!(
                "<th class=\"{}\" title=\"sort\">{}</th>",
                if c.numeric { "num" } else { "text" },
                escape(&c.name)
            ));
        }
        out.push_str("</tr></thead><tbody>\n");
        for row in &t.rows {
            out.push_str("<tr>");
            for (cell, c) in row.iter().zip(&t.columns) {
                if c.numeric {
                    out.push_str(&format!("<td class=\"num\">{}</td>", escape(cell)));
                } else {
                    // Long names (C++ templates) are cut to the column; the whole is the tooltip.
                    let cell = escape(cell);
                    out.push_str(&format!("<td title=\"{cell}\">{cell}</td>"));
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str(SCRIPT);
    out.push_str("</body></html>\n");
    out
}

/// `s` with the characters HTML gives a meaning escaped (for text and quoted attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"<style>
body { font-family: system-ui, sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
p.sub { color: #555; margin-top: 0; }
iframe#graph { width: 100%; height: 70vh; border: 1px solid #ccc; }
td:not(.num) { max-width: 32em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
table { border-collapse: collapse; margin-bottom: 1.5em; font-size: 0.9em; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #eee; text-align: left; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th.sorted-desc::after { content: " ▼"; } th.sorted-asc::after { content: " ▲"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td { font-family: ui-monospace, monospace; }
tr.hit td { background: #fde9a9; }
#result { margin-left: 1em; color: #333; }
</style>
"#;

/// The page's behaviour: sorting by a column, and one search over the graph and the tables.
const SCRIPT: &str = r#"<script>
"use strict";
(function () {
  var tables = Array.prototype.slice.call(document.querySelectorAll("table"));
  tables.forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var numeric = th.classList.contains("num");
        var desc = !th.classList.contains("sorted-desc");
        Array.prototype.forEach.call(heads, function (h) { h.classList.remove("sorted-desc", "sorted-asc"); });
        th.classList.add(desc ? "sorted-desc" : "sorted-asc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent, y = b.cells[col].textContent;
          var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          return desc ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var frame = document.getElementById("graph");
  var result = document.getElementById("result");
  var term = document.getElementById("term");
  // The graph's script is ready once its init ran (it sets `matchedtxt`); its own deferred
  // layout runs first, then the search.
  function whenGraphReady(then) {
    var w = frame.contentWindow;
    if (w && w.document && w.document.readyState === "complete" && w.matchedtxt) {
      // The graph keeps its search in its URL; an about:srcdoc document has none to keep.
      try { w.history.replaceState = function () {}; } catch (e) {}
      setTimeout(function () { then(w); }, 0);
    } else {
      setTimeout(function () { whenGraphReady(then); }, 20);
    }
  }
  // The frame as tall as the graph it holds, once the graph has laid itself out.
  whenGraphReady(function (w) {
    var svg = w.document.querySelector("svg");
    if (svg) frame.style.height = (svg.getBoundingClientRect().height + 4) + "px";
  });
  function runSearch(text) {
    var re;
    try { re = new RegExp(text); } catch (e) { result.textContent = "not a regular expression: " + e.message; return; }
    var parts = [];
    whenGraphReady(function (w) {
      w.reset_search();
      w.search(text);
      var m = w.document.getElementById("matched");
      var graph = m && m.textContent ? m.textContent : "Matched: 0%";
      parts = ["graph: " + graph];
      tables.forEach(function (table) {
        var rows = table.tBodies[0].rows, hits = 0;
        Array.prototype.forEach.call(rows, function (r) {
          var hit = Array.prototype.some.call(r.cells, function (c) {
            return !c.classList.contains("num") && re.test(c.textContent);
          });
          r.classList.toggle("hit", hit);
          if (hit) hits++;
        });
        parts.push(table.id + ": " + hits + " of " + rows.length + " rows");
      });
      result.textContent = parts.join(" · ");
    });
  }
  document.getElementById("find").addEventListener("submit", function (e) {
    e.preventDefault();
    if (term.value) runSearch(term.value);
  });
  document.getElementById("reset").addEventListener("click", function () {
    term.value = "";
    result.textContent = "";
    tables.forEach(function (t) {
      Array.prototype.forEach.call(t.tBodies[0].rows, function (r) { r.classList.remove("hit"); });
    });
    whenGraphReady(function (w) { w.reset_search(); });
  });
  // `?sort=TABLE.COLUMN` sorts as a click on that heading does (a link can keep a view).
  var params = new URLSearchParams(window.location.search);
  var sort = params.get("sort");
  if (sort) {
    var dot = sort.indexOf(".");
    var table = document.getElementById(sort.slice(0, dot));
    if (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        if (th.textContent === sort.slice(dot + 1)) th.click();
      });
    }
  }
  var s = params.get("s");
  if (s) { term.value = s; runSearch(s); }
})();
</script>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Profile, Weight};

    #[test]
    fn page_holds_graph_tables_and_nothing_from_outside() {
        let mut p = Profile::new();
        p.bytes_known = true;
        p.add(["app", "main", "parse", "malloc"], Weight::new(3, 48));
        p.add(["app", "main", "load", "calloc"], Weight::new(1, 16));
        let s = Summary::new(&p, 10);
        let tables = summary_tables(&s);
        assert_eq!(tables[0].rows[0][3], "parse");
        assert_eq!(tables[0].rows[0][5], "malloc");
        let html = page(
            "t",
            "sub",
            b"<?xml version=\"1.0\"?><svg id=\"x\">\"&</svg>",
            &tables,
        );
        assert!(
            html.contains("srcdoc=\"&lt;!DOCTYPE html&gt;"),
            "the graph is one quoted attribute"
        );
        assert!(html.contains("&lt;svg id=&quot;x&quot;&gt;&quot;&amp;&lt;/svg&gt;"));
        assert!(!html.contains("&lt;?xml"));
        for outside in ["src=\"http", "href=\"http", "<link", "@import"] {
            assert!(!html.contains(outside), "{outside}");
        }
    }
}

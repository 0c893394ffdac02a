/* trigger_nb: the run view in the page. Draws the task tree and the timeline from the JSON of
   _render/doc_data.py, with status chips, search, sort and "jump to first failure". Runs where
   the front end runs an output's scripts (JupyterLab, Notebook 7, VS Code, a browser opening an
   export); elsewhere (GitHub, nbviewer) the static tree beside it stays, and no dead control is
   shown: every control is made here. No network, no globals but one guard. */
(function () {
  var me = document.currentScript;
  var root = me && me.closest ? me.closest(".tnb-doc") : null;
  if (!root && me && me.parentNode && me.parentNode.querySelectorAll) {
    // VS Code runs an output's scripts as copies appended to the output's own element (and
    // removed at once): the page is the one in there not drawn yet
    var pages = me.parentNode.querySelectorAll(".tnb-doc:not([data-tnb-app])");
    root = pages.length ? pages[pages.length - 1] : null;
  }
  if (!root || root.getAttribute("data-tnb-app") === "on") return;
  var holder = root.querySelector("script.tnb-data");
  if (!holder) return;
  var D;
  try { D = JSON.parse(holder.textContent); } catch (e) { return; }
  root.setAttribute("data-tnb-app", "on");

  var T = D.t, N = T.length, BASE = D.base;
  var PAGE = 100, ROW_H = 20, TL_MAX_H = 560;
  var ORDER = { failed: 0, running: 1, waiting: 2, interrupted: 3, completed: 4, replayed: 5 };
  var GLYPH = { running: "◌", completed: "✓", replayed: "↻", failed: "✗", waiting: "◷",
    interrupted: "⊘", stale: "⚠" };
  var CHIPS = ["all", "failed", "running", "waiting", "stale", "replayed"];
  var kids = [], roots = [], depth = [];
  for (var i = 0; i < N; i++) {
    kids.push([]);
    var t0 = T[i];
    if (t0.b === undefined) t0.b = t0.a.length ? t0.a[0][2] : null;
    t0.d = t0.d === null || t0.d === undefined ? null : t0.d / 1e6;
  }
  for (i = 0; i < N; i++) {
    var p = T[i].p;
    if (p === undefined) { roots.push(i); depth.push(0); }
    else { kids[p].push(i); depth.push(depth[p] + 1); }
  }
  var st = { tab: "tree", filter: "all", q: "", sort: "seq", open: {}, info: {}, pages: {},
    ex: "all", target: -1, got: {} };

  // -- text --------------------------------------------------------------------------------
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function dur(s) {
    if (s === null || s === undefined) return "—";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(2) + " s";
    var m = Math.floor(s / 60), x = Math.floor(s % 60);
    if (m < 60) return m + "m " + (x < 10 ? "0" : "") + x + "s";
    var h = Math.floor(m / 60); m = m % 60;
    if (h < 24) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    return Math.floor(h / 24) + "d " + (h % 24 < 10 ? "0" : "") + (h % 24) + "h";
  }
  function pad(n, w) { n = String(n); while (n.length < w) n = "0" + n; return n; }
  function clock(ms) {
    if (ms === null || ms === undefined) return "—";
    var d = new Date(BASE + ms);
    return pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2) +
      "." + pad(d.getMilliseconds(), 3);
  }

  // -- which tasks show ----------------------------------------------------------------------
  function inChip(t, f) {
    if (f === "all") return true;
    if (f === "stale") return !!t.st;
    return t.s === f;
  }
  function matches(i) {
    var t = T[i];
    if (!inChip(t, st.filter)) return false;
    if (!st.q) return true;
    var q = st.q.toLowerCase();
    return t.t.toLowerCase().indexOf(q) >= 0 || (t.k || "").toLowerCase().indexOf(q) >= 0;
  }
  // null: every task shows; else the set of shown tasks (matches and the path to them)
  function shownSet() {
    if (st.filter === "all" && !st.q) return null;
    var keep = {};
    for (var i = 0; i < N; i++) {
      if (!matches(i)) continue;
      for (var j = i; j !== undefined && !keep[j]; j = T[j].p) keep[j] = 1;
    }
    return keep;
  }
  function sorted(list) {
    if (st.sort === "seq") return list;
    var key = {
      start: function (i) { return T[i].b === null ? Infinity : T[i].b; },
      duration: function (i) { return -(T[i].d === null ? -1 : T[i].d); },
      status: function (i) { return ORDER[T[i].s] === undefined ? 9 : ORDER[T[i].s]; }
    }[st.sort];
    return list.slice().sort(function (a, b) { return key(a) - key(b) || a - b; });
  }

  // -- the tree --------------------------------------------------------------------------------
  function meta(i) {
    var t = T[i], bits = [];
    if (t.k !== undefined) bits.push('<code class="tnb-key">' + esc(t.k) + "</code>");
    if (t.s === "waiting") bits.push('<span class="tnb-wait">waits until ' + clock(t.w) + "</span>");
    else if (t.d !== null && t.d !== undefined) bits.push('<span class="tnb-meta">' + dur(t.d) + "</span>");
    if (t.a.length > 1) bits.push('<span class="tnb-meta">' + t.a.length + " attempts</span>");
    if (t.n !== undefined) bits.push('<span class="tnb-meta tnb-progress">' + progress(i) + "</span>");
    (t.pr || []).forEach(function (p) {
      var text = esc(p[1]);
      if (/^https?:\/\//.test(p[2])) text = '<a href="' + esc(p[2]) + '" target="_blank" rel="noopener">' + text + "</a>";
      bits.push('<span class="tnb-meta tnb-prop">' + (p[0] ? esc(p[0]) + ": " : "") + text + "</span>");
    });
    if (t.rp) bits.push('<span class="tnb-badge tnb-refresh-pending" title="marked to run again on the run\'s next execution">↻ refresh pending</span>');
    if (t.er) bits.push('<span class="tnb-err">' + esc(t.er) + "</span>");
    var head = t.ic ? '<span class="tnb-icon" title="' + esc(t.ic[1]) + '">' + esc(t.ic[0]) + "</span> " : "";
    if (t.st) head += '<span class="tnb-badge tnb-stale" title="' + esc(t.st.join("; ")) + '">⚠ stale</span> ';
    return head + bits.join('<span class="tnb-sep"> · </span>');
  }
  function progress(i) {
    var done = 0, failed = 0, c = kids[i];
    for (var j = 0; j < c.length; j++) {
      var s = T[c[j]].s;
      if (s === "completed" || s === "replayed") done++;
      else if (s === "failed") failed++;
    }
    return done + "/" + (T[i].n || c.length) + " done" + (failed ? " · " + failed + " failed" : "");
  }
  function details(i) {
    var t = T[i], out = [];
    if (t.st) out.push('<div class="tnb-stale-note"><b>⚠ stale: ' + esc(t.st.join("; ")) +
      '</b><div class="tnb-muted">replayed although its code or inputs changed; run it again ' +
      "with <code>%%trigger_job ... --refresh-stale</code></div></div>");
    if (t.ds) out.push("<div>" + esc(t.ds) + "</div>");
    if (t.lg) out.push("<div><b>Logs</b><table>" + t.lg.map(function (l) {
      return '<tr class="tnb-log tnb-lvl-' + esc(l[0]) + '"><td>' + esc(l[0]) + "</td><td>" +
        esc(l[1]) + "</td><td>" + esc(l[2]) + "</td><td><code>" + esc(l[3]) + "</code></td></tr>";
    }).join("") + "</table></div>");
    if (t.pa !== undefined) out.push("<div><b>Params</b><pre>" + esc(t.pa) + "</pre></div>");
    if (t.a.length) out.push("<div><b>Attempts</b><table>" + t.a.map(function (a) {
      var took = a[3] === null ? "—" : dur((a[3] - a[2]) / 1000);
      return '<tr class="tnb-attempt"><td>#' + a[0] + "</td><td>execution " + a[1] + "</td><td>" +
        clock(a[2]) + "</td><td>" + took + "</td><td>" + esc(a[6] || a[4]) + '</td><td class="tnb-err">' +
        esc(a[5]) + "</td></tr>";
    }).join("") + "</table></div>");
    if (t.tb) out.push('<details class="tnb-err tnb-traceback"><summary>traceback</summary><pre>' +
      esc(t.tb) + "</pre></details>");
    if (t.cp) out.push(t.cp);
    if (t.op) out.push('<div><b>Output</b> <span class="tnb-muted">' + esc(t.op[0] || "") +
      (t.op[1] !== null ? ", " + Number(t.op[1]).toLocaleString("en") + " bytes" : "") +
      '</span><pre class="tnb-preview">' + esc(t.op[2]) + "</pre></div>");
    if (findBridge()) {
      out.push('<div class="tnb-actions-row">' + (t.s === "completed" || t.s === "replayed" ?
        '<button data-act="output" title="load the output in the kernel and show it in its own rich display">show output</button> ' : "") +
        '<button data-act="refresh" class="tnb-refresh-btn" title="run this task and its subtasks again on the run\'s next execution (its output stays in its history)">Refresh</button> ' +
        '<button data-act="rerun" class="tnb-rerun-btn" title="execute the run again now: this task and every later one run again, earlier ones are replayed">Re-run from here</button></div>');
    }
    if (st.got[i] !== undefined) out.push('<div class="tnb-answer">' + st.got[i] + "</div>");
    return '<div class="tnb-body">' + (out.join("") || '<div class="tnb-muted">no details</div>') + "</div>";
  }
  function rowHtml(i, keep, out) {
    var t = T[i], c = keep ? kids[i].filter(function (j) { return keep[j]; }) : kids[i];
    var open = keep ? c.length > 0 : !!st.open[i];
    var chev = c.length ? '<span class="tnb-chev" data-act="kids">' + (open ? "▾" : "▸") + "</span>"
      : '<span class="tnb-chev"></span>';
    var dim = keep && !matches(i) ? " tnb-dim" : "";
    var hit = st.target === i ? " tnb-target" : "";
    out.push('<div class="tnb-row tnb-st-' + t.s + dim + hit + '" data-i="' + i + '">' + chev +
      '<span class="tnb-glyph tnb-st-' + t.s + '" title="' + t.s + '">' + GLYPH[t.s] + "</span> " +
      '<span class="tnb-name" data-act="info" title="' + t.s + ': click for details">' + esc(t.t) +
      "</span> " + meta(i) + "</div>");
    if (st.info[i]) out.push(details(i));
    if (open && c.length) {
      out.push('<div class="tnb-kids">');
      level(c, i, keep, out);
      out.push("</div>");
    }
  }
  function level(list, parent, keep, out) {
    list = sorted(list);
    var limit = st.pages[parent] || PAGE;
    for (var j = 0; j < list.length && j < limit; j++) rowHtml(list[j], keep, out);
    if (list.length > limit) {
      var left = list.length - limit;
      out.push('<div class="tnb-more-row" data-act="more" data-p="' + parent + '">show ' +
        Math.min(PAGE, left) + " more (" + left.toLocaleString("en") + " not shown)</div>");
    }
  }
  function drawTree() {
    var keep = shownSet(), out = [];
    var top = keep ? roots.filter(function (j) { return keep[j]; }) : roots;
    level(top, -1, keep, out);
    if (!top.length) out.push('<div class="tnb-muted">no task matches</div>');
    panes.tree.innerHTML = out.join("");
  }

  // -- the timeline (rows drawn only where the scroll box shows them) --------------------------
  function tlRows() {
    var keep = shownSet(), rows = [], ex = st.ex === "all" ? null : Number(st.ex);
    (function walk(list) {
      for (var j = 0; j < list.length; j++) {
        var i = list[j];
        if (keep && !keep[i]) continue;
        var t = T[i], bars = t.a.filter(function (a) { return ex === null || a[1] === ex; });
        if (ex === null || bars.length || (t.w !== undefined && t.s === "waiting")) rows.push([i, bars]);
        walk(kids[i]);
      }
    })(roots);
    return rows;
  }
  function span(rows) {
    var lo = Infinity, hi = -Infinity, ex = null;
    D.ex.forEach(function (e) { if (String(e[0]) === String(st.ex)) ex = e; });
    if (ex) { lo = ex[1]; hi = ex[2] === null ? D.now : ex[2]; }
    rows.forEach(function (r) {
      r[1].forEach(function (a) { lo = Math.min(lo, a[2]); hi = Math.max(hi, a[3] === null ? D.now : a[3]); });
      var t = T[r[0]];
      if (t.w !== undefined && t.s === "waiting") hi = Math.max(hi, t.w);
    });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    return [lo, Math.max(hi, lo + 1)];
  }
  var tl = null;
  function drawTimeline() {
    var rows = tlRows(), sp = span(rows), lo = sp[0], w = sp[1] - lo;
    var ticks = [];
    for (var k = 0; k <= 4; k++) {
      ticks.push('<span class="tnb-tick' + (k === 4 ? " tnb-tick-end" : "") + '" style="left:' + (k * 25) + '%">' +
        (k ? "+" + dur(w * k / 4000) : clock(lo)) + "</span>");
    }
    var opts = '<option value="all">all executions</option>' + D.ex.map(function (e) {
      return '<option value="' + e[0] + '"' + (String(st.ex) === String(e[0]) ? " selected" : "") +
        ">execution " + e[0] + " (" + esc(e[3]) + ")</option>";
    }).join("");
    panes.timeline.innerHTML =
      '<div class="tnb-tl-head"><select class="tnb-tl-ex">' + opts + '</select> <span class="tnb-muted">' +
      rows.length.toLocaleString("en") + " tasks · " + dur(w / 1000) + " · hover a bar for its times" +
      '</span></div><div class="tnb-tl-axis"><span class="tnb-tl-label"></span><span class="tnb-tl-track">' +
      ticks.join("") + '</span></div><div class="tnb-tl-scroll" style="height:' +
      Math.min(rows.length * ROW_H + 2, TL_MAX_H) + 'px"><div class="tnb-tl-inner" style="height:' +
      rows.length * ROW_H + 'px"></div></div>';
    tl = { rows: rows, lo: lo, w: w, box: panes.timeline.querySelector(".tnb-tl-scroll"), drawn: "" };
    tl.box.addEventListener("scroll", function () { tlWindow(); });
    panes.timeline.querySelector(".tnb-tl-ex").addEventListener("change", function (e) {
      st.ex = e.target.value; drawTimeline();
    });
    tlWindow();
  }
  function pct(ms) { return ((ms - tl.lo) / tl.w * 100).toFixed(3); }
  function wid(a, b) { return Math.max((b - a) / tl.w * 100, 0.15).toFixed(3); }
  function tlWindow() {
    var first = Math.max(0, Math.floor(tl.box.scrollTop / ROW_H) - 10);
    var last = Math.min(tl.rows.length, first + Math.ceil(TL_MAX_H / ROW_H) + 20);
    var id = first + ":" + last;
    if (tl.drawn === id) return;
    tl.drawn = id;
    var out = [];
    for (var r = first; r < last; r++) {
      var i = tl.rows[r][0], t = T[i], bars = tl.rows[r][1], cells = [], prev = null, waitFrom = null;
      bars.forEach(function (a) {
        var end = a[3] === null ? D.now : a[3];
        if (prev !== null && a[2] > prev && waitFrom === null) {
          cells.push('<span class="tnb-gap" style="left:' + pct(prev) + "%;width:" + wid(prev, a[2]) +
            '%" title="' + esc(t.t) + ": waited " + dur((a[2] - prev) / 1000) + ' before the next attempt"></span>');
        }
        cells.push('<span class="tnb-bar tnb-attempt tnb-bar-' + a[4] + '" style="left:' + pct(a[2]) +
          "%;width:" + wid(a[2], end) + '%" title="' + esc(t.t) + " · attempt " + a[0] + " · execution " +
          a[1] + "\n" + clock(a[2]) + " → " + (a[3] === null ? "running" : clock(a[3])) + " (" +
          dur((end - a[2]) / 1000) + ") · " + esc(a[4]) + (a[5] ? "\n" + esc(a[5]) : "") + '"></span>');
        // an io.wait: its first attempt suspends the run; the wait itself is drawn hatched
        if (a[4] === "waiting" && waitFrom === null) waitFrom = end;
        prev = end;
      });
      if (t.w !== undefined && (waitFrom !== null || t.s === "waiting")) {
        var from = waitFrom === null ? (t.b === null ? tl.lo : t.b) : waitFrom;
        if (t.w > from) cells.push('<span class="tnb-bar tnb-bar-wait" style="left:' + pct(from) +
          "%;width:" + wid(from, t.w) + '%" title="' + esc(t.t) + ": waits from " + clock(from) +
          " until " + clock(t.w) + " (" + dur((t.w - from) / 1000) + ')"></span>');
      }
      out.push('<div class="tnb-tl-row tnb-st-' + t.s + '" data-i="' + i + '" style="top:' + r * ROW_H +
        'px"><span class="tnb-tl-label" style="padding-left:' + (4 + depth[i] * 12) + 'px" title="' +
        esc(t.t) + '"><span class="tnb-glyph tnb-st-' + t.s + '">' + GLYPH[t.s] + "</span> " + esc(t.t) +
        '</span><span class="tnb-tl-track">' + cells.join("") + "</span></div>");
    }
    tl.box.firstChild.innerHTML = out.join("");
  }

  // -- controls ------------------------------------------------------------------------------
  function count(f) {
    var n = 0;
    for (var i = 0; i < N; i++) if (inChip(T[i], f)) n++;
    return n;
  }
  var bar = document.createElement("div");
  bar.className = "tnb-bar-row";
  bar.innerHTML =
    '<span class="tnb-tabs"><button class="tnb-tab tnb-on" data-tab="tree">Tree</button>' +
    '<button class="tnb-tab" data-tab="timeline">Timeline</button></span> ' +
    CHIPS.map(function (f) {
      var n = count(f);
      return '<button class="tnb-chip tnb-chip-' + f + (f === "all" ? " tnb-on" : "") + '" data-f="' + f +
        '"' + (n || f === "all" ? "" : " disabled") + ">" + f + ' <span class="tnb-n">' +
        n.toLocaleString("en") + "</span></button>";
    }).join("") +
    ' <input class="tnb-search" type="search" placeholder="search keys and names"> ' +
    '<button class="tnb-jump"' + (D.ff === null ? " disabled" : "") + '>jump to first failure</button> ' +
    '<label class="tnb-muted">sort <select class="tnb-sort"><option value="seq">run order</option>' +
    '<option value="start">start</option><option value="duration">duration</option>' +
    '<option value="status">status</option></select></label>';
  var panes = { tree: document.createElement("div"), timeline: document.createElement("div") };
  panes.tree.className = "tnb-pane tnb-pane-tree tnb-tree";
  panes.timeline.className = "tnb-pane tnb-pane-timeline";
  panes.timeline.style.display = "none";
  var app = document.createElement("div");
  app.className = "tnb-app";
  app.appendChild(bar); app.appendChild(panes.tree); app.appendChild(panes.timeline);
  var fallback = root.querySelector(".tnb-static-tree");
  if (fallback) fallback.style.display = "none";
  root.appendChild(app);

  function draw() {
    if (st.tab === "tree") drawTree(); else drawTimeline();
  }
  function setTab(tab) {
    st.tab = tab;
    [].forEach.call(bar.querySelectorAll(".tnb-tab"), function (b) {
      b.classList.toggle("tnb-on", b.getAttribute("data-tab") === tab);
    });
    panes.tree.style.display = tab === "tree" ? "" : "none";
    panes.timeline.style.display = tab === "timeline" ? "" : "none";
    var began = performance.now();
    draw();
    root.setAttribute("data-tnb-" + tab + "-ms", (performance.now() - began).toFixed(1));
  }
  function setFilter(f) {
    st.filter = f;
    [].forEach.call(bar.querySelectorAll(".tnb-chip"), function (b) {
      b.classList.toggle("tnb-on", b.getAttribute("data-f") === f);
    });
    draw();
  }
  function jump(i) {
    if (i === null || i === undefined || i < 0) return;
    if (!matches(i)) { st.q = ""; bar.querySelector(".tnb-search").value = ""; setFilter("all"); }
    for (var j = T[i].p, c = i; j !== undefined; c = j, j = T[j].p) {
      st.open[j] = 1;
      var at = sorted(kids[j]).indexOf(c);
      if (at >= (st.pages[j] || PAGE)) st.pages[j] = (Math.floor(at / PAGE) + 1) * PAGE;
    }
    var top = sorted(roots).indexOf(c);
    if (top >= (st.pages[-1] || PAGE)) st.pages[-1] = (Math.floor(top / PAGE) + 1) * PAGE;
    st.info[i] = 1;
    st.target = i;
    setTab("tree");
    var row = panes.tree.querySelector('.tnb-row[data-i="' + i + '"]');
    if (row) row.scrollIntoView({ block: "center" });
  }
  bar.addEventListener("click", function (e) {
    var b = e.target.closest("button");
    if (!b) return;
    if (b.hasAttribute("data-tab")) setTab(b.getAttribute("data-tab"));
    else if (b.hasAttribute("data-f")) setFilter(b.getAttribute("data-f"));
    else if (b.classList.contains("tnb-jump")) jump(D.ff);
  });
  var typing = null;
  bar.querySelector(".tnb-search").addEventListener("input", function (e) {
    clearTimeout(typing);
    typing = setTimeout(function () { st.q = e.target.value.trim(); draw(); }, 120);
  });
  bar.querySelector(".tnb-sort").addEventListener("change", function (e) { st.sort = e.target.value; draw(); });
  panes.tree.addEventListener("click", function (e) {
    var el = e.target.closest("[data-act]");
    if (!el) return;
    var act = el.getAttribute("data-act");
    if (act === "output" || act === "refresh" || act === "rerun") {
      var row = el.closest(".tnb-body").previousElementSibling;
      ask(act, Number(row.getAttribute("data-i")));
      return;
    }
    if (act === "more") {
      var p = Number(el.getAttribute("data-p"));
      st.pages[p] = (st.pages[p] || PAGE) + PAGE;
    } else {
      var i = Number(el.closest(".tnb-row").getAttribute("data-i"));
      if (act === "kids") st.open[i] = !st.open[i]; else st.info[i] = !st.info[i];
    }
    drawTree();
  });
  [].forEach.call(root.querySelectorAll("[data-tnb-jump]"), function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); jump(D.ff); });
  });
  // open a few levels at first, breadth-first, within 40 rows (as the interactive tree does)
  var budget = 40 - roots.length, queue = roots.slice();
  while (queue.length) {
    var q = queue.shift(), n = Math.min(kids[q].length, PAGE);
    if (n && n <= budget) { budget -= n; st.open[q] = 1; queue = queue.concat(kids[q].slice(0, n)); }
  }
  setTab("tree");

  // -- the kernel, while the one that ran the run lives (_widgets/bridge.py) ------------------
  // The bridge is a hidden widget in the output just before this page: a text box to write a
  // request into (ipywidgets sends it to the kernel) and an HTML box the kernel answers in.
  // No bridge (no kernel, another front end): no action is shown.
  function findBridge() {
    for (var el = root, up = 0; el && up < 8; el = el.parentElement, up++) {
      for (var prev = el.previousElementSibling, k = 0; prev && k < 3; prev = prev.previousElementSibling, k++) {
        if (!prev.querySelector) continue;
        var input = prev.querySelector(".tnb-bridge-in input"), out = prev.querySelector(".tnb-bridge-out");
        if (input && out) return { input: input, out: out };
        if (prev.querySelector(".tnb-doc")) return null;  // another run's page: not ours
      }
    }
    return null;
  }
  var asked = 0;
  function ask(act, i) {
    var b = findBridge();
    if (!b) return;
    var n = Date.now().toString(36) + "-" + (++asked);
    st.got[i] = '<span class="tnb-muted">' + (act === "rerun" ? "re-running in the kernel…" : "asking the kernel…") + "</span>";
    drawTree();
    b.input.value = JSON.stringify({ n: n, do: act, i: i });
    b.input.dispatchEvent(new Event("input", { bubbles: true }));
    var tries = 0, timer = setInterval(function () {
      var found = findBridge(), reply = found && found.out.querySelector('.tnb-reply[data-n="' + n + '"]');
      if (!root.isConnected) { clearInterval(timer); return; }  // a re-run drew a new page
      if (!reply && ++tries < 1200) return;
      clearInterval(timer);
      st.got[i] = reply ? reply.innerHTML : '<span class="tnb-err">the kernel did not answer (busy, or restarted)</span>';
      ((reply && reply.getAttribute("data-marked")) || "").split(" ").forEach(function (j) {
        if (j !== "" && T[Number(j)]) T[Number(j)].rp = 1;
      });
      drawTree();
    }, 100);
  }

  // The widget output just before this page, in a notebook reopened without its kernel, says
  // "Error displaying widget: model not found": hide it (app_css.REOPEN_CSS does it by CSS in
  // JupyterLab and Notebook 7; this is for the other front ends, a while after rendering).
  function hideDead() {
    for (var el = root, up = 0; el && up < 6; el = el.parentElement, up++) {
      var prev = el.previousElementSibling;
      if (!prev) continue;
      var text = prev.textContent || "";
      if (/model not found|Loading widget/i.test(text) && !prev.querySelector(".tnb") &&
        text.length < 200) { prev.style.display = "none"; return; }
      if (text.trim()) return;  // some other output: not ours to hide
    }
  }
  [0, 1000, 4000].forEach(function (ms) { setTimeout(hideDead, ms); });
})();

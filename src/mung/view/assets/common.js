/* mung results pages: shared helpers (DOM building, formatting, a sortable paginated table). */
"use strict";

const Mung = (() => {
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function fmtTime(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    const m = Math.floor(s / 60), sec = s - 60 * m;
    return `${m}:${sec.toFixed(1).padStart(4, "0")}`;
  }

  const pct = (x, digits = 2) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(digits)}%`);

  /* URL of an audio file given relative to the page. Served by `mung view`, files outside the folder
     come from /_outside/ (browsers drop leading "../" in http URLs). */
  function audioUrl(rel) {
    if (!rel) return null;
    const enc = rel.split("/").map(encodeURIComponent).join("/");
    if (location.protocol.startsWith("http") && rel.startsWith("../")) return "_outside/" + encodeURIComponent(rel);
    return enc;
  }

  function note(text, cls = "note") {
    return el("p", { class: cls, role: "status", text });
  }

  /* A table over `rows` with clickable, keyboard-reachable column headers and pages of `pageSize`.
     columns: [{key, label, value(row) -> sortable, cell(row) -> Node|string, num}] */
  function table(opts) {
    const { columns, caption, pageSize = 100, rowAttrs } = opts;
    let rows = opts.rows, sortKey = opts.sortKey || null, dir = opts.sortDir || 1, page = 0;
    const wrap = el("div", { class: "table-wrap" });
    const pager = el("nav", { class: "pager", "aria-label": `${caption} pages` });
    const status = el("span", { class: "count", role: "status" });
    const tbl = el("table", { class: "data" });

    function sorted() {
      if (!sortKey) return rows;
      const col = columns.find((c) => c.key === sortKey);
      const key = (r) => col.value(r);
      return rows.slice().sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * dir;
      });
    }

    function render() {
      const all = sorted();
      const pages = Math.max(1, Math.ceil(all.length / pageSize));
      page = Math.min(page, pages - 1);
      const shown = all.slice(page * pageSize, (page + 1) * pageSize);
      const head = el("tr", {}, columns.map((c) => {
        const state = c.key === sortKey ? (dir > 0 ? "ascending" : "descending") : "none";
        const label = c.label + (c.key === sortKey ? (dir > 0 ? " ▲" : " ▼") : "");
        const th = el("th", { scope: "col", "aria-sort": c.value ? state : null, class: c.num ? "num" : null });
        if (c.value) {
          th.append(el("button", {
            class: "sort", "data-key": c.key, title: `Sort by ${c.label}`,
            onclick: () => { dir = sortKey === c.key ? -dir : (c.num ? -1 : 1); sortKey = c.key; render(); },
          }, label));
        } else th.append(c.label);
        return th;
      }));
      const body = el("tbody", {}, shown.map((r) => el("tr", rowAttrs ? rowAttrs(r) : {},
        columns.map((c) => el("td", { class: c.num ? "num" : null }, c.cell(r))))));
      tbl.replaceChildren(el("caption", { text: caption }), el("thead", {}, head), body);
      status.textContent = all.length
        ? `${page * pageSize + 1}–${page * pageSize + shown.length} of ${all.length}`
        : "nothing matches";
      pager.replaceChildren(
        el("button", { class: "prev", disabled: page === 0, onclick: () => { page--; render(); } }, "‹ Previous"),
        status,
        el("button", { class: "next", disabled: page >= pages - 1, onclick: () => { page++; render(); } }, "Next ›"),
      );
    }

    wrap.append(tbl, pager);
    render();
    return {
      node: wrap,
      setRows(r) { rows = r; page = 0; render(); },
      render,
    };
  }

  function ready() {
    document.getElementById("loading")?.remove();
    window.mungReadyMs = performance.now();
    window.mungReady = true;
    document.body.dataset.ready = "1";
  }

  return { el, fmtTime, pct, audioUrl, note, table, ready };
})();

/* mung music page: a filterable, sortable, paginated table of tracks; truth and confusion with labels. */
"use strict";

(() => {
  const { el, pct, audioUrl, note, table, ready } = Mung;
  const INDEX = window.MUNG_INDEX;
  const app = document.getElementById("app");
  const { stations, moods } = INDEX;
  const tracks = INDEX.tracks.map((t, i) => ({ ...t, i }));
  const player = el("audio", { id: "player", preload: "none", "aria-label": "Track player" });
  let playing = null;

  function playButton(t) {
    if (!t.audio) return el("span", { class: "sub", title: t.note || "" }, "no audio");
    const on = playing === t.i && !player.paused;
    return el("button", {
      class: "play", "data-id": t.id, "aria-pressed": on ? "true" : "false",
      "aria-label": `${on ? "Pause" : "Play"} ${t.id}`,
      onclick: () => toggle(t),
    }, on ? "❚❚ Pause" : "▶ Play");
  }

  function toggle(t) {
    if (playing === t.i && !player.paused) { player.pause(); return; }
    if (playing !== t.i) { player.src = audioUrl(t.audio); playing = t.i; }
    player.play().catch(() => {});
  }

  function refreshButtons() {
    document.querySelectorAll("button.play").forEach((b) => {
      const t = tracks.find((x) => x.id === b.dataset.id);
      b.replaceWith(playButton(t));
    });
  }
  player.addEventListener("play", refreshButtons);
  player.addEventListener("pause", refreshButtons);
  player.addEventListener("error", () => {
    const t = tracks[playing];
    status.textContent = t ? `Audio missing: ${t.audio} could not be loaded (moved or deleted?).` : "";
  });

  function moodBars(t) {
    const pred = new Set(t.pred), truth = new Set(t.tm);
    return el("ul", { class: "moods" }, t.top.map(([m, v]) => el("li", { class: pred.has(m) ? "pred" : null },
      el("span", { class: "mood-name" }, moods[m] + (pred.has(m) ? " ✓" : "") + (truth.has(m) ? " (true)" : "")),
      el("span", { class: "bar", role: "img", "aria-label": `${moods[m]} ${v.toFixed(2)}` },
        el("span", { class: "fill", style: { width: `${Math.round(100 * v)}%` } })),
      el("span", { class: "val" }, v.toFixed(2)))));
  }

  const columns = [
    { key: "play", label: "Play", cell: playButton },
    { key: "id", label: "Track", value: (t) => t.id, cell: (t) => el("span", { class: "track", title: t.file }, t.id) },
    { key: "station", label: "Station", value: (t) => (t.st === null ? null : stations[t.st]),
      cell: (t) => (t.st === null ? "–" : el("span", { class: `station s${t.st % 8}` }, stations[t.st])) },
    { key: "p", label: "Probability", num: true, value: (t) => t.p, cell: (t) => (t.p === null ? "–" : t.p.toFixed(2)) },
  ];
  if (INDEX.has_labels) {
    columns.push({ key: "truth", label: "True station", value: (t) => (t.ts === null ? null : stations[t.ts]),
      cell: (t) => (t.ts === null ? "unlabelled"
        : el("span", { class: t.ts === t.st ? "ok" : "wrong" }, `${stations[t.ts]} ${t.ts === t.st ? "✓ right" : "✗ wrong"}`)) });
  }
  columns.push({ key: "mood", label: "Top moods (✓ = predicted)", value: (t) => (t.top.length ? t.top[0][1] : null), cell: moodBars });
  if (INDEX.has_labels) {
    columns.push({ key: "tm", label: "True moods", cell: (t) => t.tm.map((m) => moods[m]).join(", ") || "–" });
  }

  const stationSel = el("select", { id: "filter-station" }, el("option", { value: "" }, "all stations"),
    stations.map((s, i) => el("option", { value: String(i) }, s)));
  const moodSel = el("select", { id: "filter-mood" }, el("option", { value: "" }, "all moods"),
    moods.map((m, i) => el("option", { value: String(i) }, m)));
  const search = el("input", { id: "filter-text", type: "search", placeholder: "track name" });
  const status = el("p", { class: "count", role: "status", id: "match-count" });

  function filtered() {
    const s = stationSel.value === "" ? null : +stationSel.value;
    const m = moodSel.value === "" ? null : +moodSel.value;
    const q = search.value.trim().toLowerCase();
    return tracks.filter((t) => (s === null || t.st === s) && (m === null || t.pred.includes(m))
      && (!q || t.id.toLowerCase().includes(q) || t.file.toLowerCase().includes(q)));
  }

  if (!tracks.length) {
    app.replaceChildren(note("No results: this page holds no music tags (0 tracks). "
      + "Run mung music tag AUDIO... --html DIR on some audio.", "note empty"));
    ready();
    return;
  }

  const tbl = table({ columns, rows: tracks, caption: `${tracks.length} track(s)`, pageSize: 100,
    rowAttrs: (t) => ({ "data-id": t.id }) });
  function apply() {
    const rows = filtered();
    tbl.setRows(rows);
    status.textContent = `${rows.length} of ${tracks.length} track(s) shown`;
  }
  for (const c of [stationSel, moodSel]) c.addEventListener("change", apply);
  search.addEventListener("input", apply);

  const filters = el("div", { class: "filters", role: "search" },
    el("label", {}, "Station ", stationSel), el("label", {}, "Mood (predicted) ", moodSel),
    el("label", {}, "Search ", search), status);

  const parts = [];
  if (INDEX.has_labels) parts.push(summary());
  parts.push(filters, player, tbl.node);
  app.replaceChildren(...parts);
  apply();
  ready();

  function summary() {
    const box = el("section", { class: "summary", "aria-label": "Accuracy against the labels" });
    box.append(el("p", { id: "accuracy" }, `Station accuracy ${pct(INDEX.accuracy, 1)} on ${INDEX.labelled} labelled `
      + `track(s); mood micro-F1 ${INDEX.mood_f1 === null ? "–" : INDEX.mood_f1.toFixed(3)}.`));
    if (INDEX.confusion) {
      const m = INDEX.confusion;
      const max = Math.max(1, ...m.flat());
      box.append(el("table", { class: "confusion", id: "confusion" },
        el("caption", {}, "Confusion matrix: rows = true station, columns = predicted"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "true \\ predicted"),
          stations.map((s) => el("th", { scope: "col" }, s)))),
        el("tbody", {}, m.map((row, i) => el("tr", {}, el("th", { scope: "row" }, stations[i]),
          row.map((v, j) => el("td", { class: i === j ? "diag num" : "num",
            style: { background: `rgba(${i === j ? "23,134,106" : "194,81,10"},${(0.08 + 0.6 * v / max).toFixed(2)})` } },
          String(v))))))));
    }
    return box;
  }
})();

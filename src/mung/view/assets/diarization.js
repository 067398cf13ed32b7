/* mung diarization page: recording list, zoomable timeline, playback, renaming, reference errors. */
"use strict";

(() => {
  const { el, fmtTime, pct, audioUrl, note, table, ready } = Mung;
  const INDEX = window.MUNG_INDEX;
  const app = document.getElementById("app");
  const COLOURS = ["#1f6fb4", "#c2510a", "#17866a", "#6a5fb0", "#c2227a", "#4d7f14", "#8a6418", "#555555",
    "#9c7a00", "#0f7f8c"];
  const ERRORS = [["missed", "missed speech"], ["false_alarm", "false alarm"], ["confusion", "confusion"]];
  const SEEK = 5;
  const cache = {}, waiting = {};
  let current = null; // {i, d, names, zoom, player, ...}

  window.MUNG_DETAIL = (i, d) => {
    cache[i] = d;
    (waiting[i] || []).forEach((f) => f(d));
    delete waiting[i];
  };

  function load(i) {
    return new Promise((resolve, reject) => {
      if (cache[i]) { resolve(cache[i]); return; }
      (waiting[i] = waiting[i] || []).push(resolve);
      const s = el("script", { src: `view-data/item-${i}.js` });
      s.onerror = () => reject(new Error(`view-data/item-${i}.js could not be loaded`));
      document.head.append(s);
    });
  }

  const recs = INDEX.recordings.map((r, i) => ({ ...r, i }));

  function list() {
    const cols = [
      { key: "uri", label: "Recording", value: (r) => r.uri,
        cell: (r) => el("button", { class: "open link", "data-uri": r.uri, onclick: () => open(r.i) }, r.uri) },
      { key: "duration", label: "Duration", num: true, value: (r) => r.duration, cell: (r) => fmtTime(r.duration) },
      { key: "speakers", label: "Speakers", num: true, value: (r) => r.speakers, cell: (r) => String(r.speakers) },
    ];
    if (INDEX.has_ref) cols.push({ key: "der", label: "DER", num: true, value: (r) => r.der, cell: (r) => pct(r.der) });
    return table({ columns: cols, rows: recs, caption: `${recs.length} recording(s)`, pageSize: 100,
      rowAttrs: (r) => ({ "data-uri": r.uri, class: current && current.i === r.i ? "selected" : null }) });
  }

  function speakerName(k) { return current.names[k] || current.d.speakers[k]; }

  function lane(label, cls, segments, colour, makeSeg) {
    const track = el("div", { class: `lane ${cls}` });
    for (const seg of segments) track.append(makeSeg(seg, colour));
    return [el("div", { class: `lane-label ${cls}`, title: label }, label), track];
  }

  function segStyle(s, e, dur, colour) {
    return { left: `${(100 * s) / dur}%`, width: `${Math.max((100 * (e - s)) / dur, 0.05)}%`, background: colour };
  }

  function turnButton(d, turn, colour) {
    const [s, e, k] = turn;
    const b = el("button", {
      class: "turn", style: segStyle(s, e, d.duration, colour), "data-start": s, "data-end": e,
      "data-speaker": d.speakers[k], onclick: (ev) => { ev.stopPropagation(); playFrom(s); },
    });
    b.setAttribute("aria-label", `${speakerName(k)}: ${fmtTime(s)} to ${fmtTime(e)}; play from start`);
    b.title = `${speakerName(k)}  ${fmtTime(s)} – ${fmtTime(e)}`;
    return b;
  }

  function timeline(d) {
    const labels = el("div", { class: "labels" });
    const inner = el("div", { class: "inner" });
    const viewport = el("div", { class: "viewport", tabindex: "0", "aria-label": "Timeline; click to seek" }, inner);
    const add = ([label, track]) => { labels.append(label); inner.append(track); };
    const ruler = el("div", { class: "lane ruler" });
    add([el("div", { class: "lane-label ruler" }, "time"), ruler]);
    const canvas = el("canvas", { class: "envelope", "aria-hidden": "true" });
    add([el("div", { class: "lane-label env" }, d.envelope ? "energy" : "energy (no audio)"),
      el("div", { class: "lane env" }, canvas)]);
    d.speakers.forEach((spk, k) => {
      const [lab, track] = lane(speakerName(k), "hyp", d.turns.filter((t) => t[2] === k), COLOURS[k % COLOURS.length],
        (t, c) => turnButton(d, t, c));
      lab.dataset.speaker = spk;
      add([lab, track]);
    });
    if (d.ref) {
      add([el("div", { class: "lane-label section" }, "reference"), el("div", { class: "lane section" })]);
      d.ref.speakers.forEach((spk, k) => add(lane(spk, "ref", d.ref.turns.filter((t) => t[2] === k), "#7a8591",
        ([s, e], c) => el("div", { class: "seg", style: segStyle(s, e, d.duration, c), title: `${spk} ${fmtTime(s)} – ${fmtTime(e)}` }))));
      for (const [key, label] of ERRORS) {
        add(lane(label, `err ${key}`, d.errors[key], null,
          ([s, e]) => el("div", { class: `seg ${key}`, style: segStyle(s, e, d.duration, null),
            title: `${label} ${fmtTime(s)} – ${fmtTime(e)}` })));
      }
    }
    const cursor = el("div", { class: "cursor", "aria-hidden": "true" });
    inner.append(cursor);
    inner.addEventListener("click", (ev) => {
      const rect = inner.getBoundingClientRect();
      seek(((ev.clientX - rect.left) / rect.width) * d.duration);
    });
    viewport.addEventListener("wheel", (ev) => {
      if (!ev.ctrlKey) return;
      ev.preventDefault();
      zoom(ev.deltaY < 0 ? 1.5 : 1 / 1.5);
    }, { passive: false });
    return { node: el("div", { class: "timeline" }, labels, viewport), inner, viewport, ruler, canvas, cursor };
  }

  function drawRuler() {
    const { ruler, viewport } = current.tl, dur = current.d.duration;
    const px = viewport.clientWidth * current.zoom;
    const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
    const step = steps.find((s) => (px * s) / dur >= 70) || 3600;
    const ticks = [];
    for (let t = 0; t <= dur && ticks.length < 2000; t += step) {
      ticks.push(el("span", { class: "tick", style: { left: `${(100 * t) / dur}%` } }, fmtTime(t)));
    }
    ruler.replaceChildren(...ticks);
  }

  function drawEnvelope() {
    const { canvas, viewport } = current.tl, env = current.d.envelope, dur = current.d.duration;
    const w = Math.min(Math.round(viewport.clientWidth * current.zoom), 30000), h = 40;
    canvas.width = w; canvas.height = h;
    canvas.style.width = `${100}%`;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    if (!env) return;
    ctx.fillStyle = "#5b6b7c";
    const n = env.values.length;
    for (let x = 0; x < w; x++) {
      const a = Math.floor(((x / w) * dur) / env.hop), b = Math.max(a + 1, Math.floor((((x + 1) / w) * dur) / env.hop));
      let v = 0;
      for (let j = a; j < b && j < n; j++) v = Math.max(v, env.values[j]);
      const bar = (v / 100) * h;
      ctx.fillRect(x, (h - bar) / 2, 1, Math.max(bar, 0.5));
    }
  }

  function zoom(factor) {
    if (!current) return;
    const z = Math.min(Math.max(current.zoom * factor, 1), 400);
    const { viewport } = current.tl;
    const t = current.player ? current.player.currentTime : 0;
    current.zoom = z;
    current.tl.inner.style.width = `${100 * z}%`;
    drawRuler(); drawEnvelope();
    viewport.scrollLeft = (t / current.d.duration) * viewport.scrollWidth - viewport.clientWidth / 2;
    current.zoomLabel.textContent = `zoom ×${z.toFixed(1)}`;
  }

  function updateCursor() {
    if (!current) return;
    const t = current.player ? current.player.currentTime : current.time || 0, dur = current.d.duration;
    current.tl.cursor.style.left = `${(100 * t) / dur}%`;
    current.clock.textContent = `${fmtTime(t)} / ${fmtTime(dur)}`;
    const { viewport } = current.tl;
    const x = (t / dur) * viewport.scrollWidth;
    if (current.player && !current.player.paused && (x < viewport.scrollLeft || x > viewport.scrollLeft + viewport.clientWidth)) {
      viewport.scrollLeft = x - 20;
    }
  }

  function tick() {
    updateCursor();
    if (current && current.player && !current.player.paused) requestAnimationFrame(tick);
  }

  function seek(t) {
    if (!current) return;
    t = Math.min(Math.max(t, 0), current.d.duration);
    if (current.player && current.audioOk) current.player.currentTime = t;
    else current.time = t;
    updateCursor();
  }

  function playFrom(t) {
    seek(t);
    if (current.player && current.audioOk) current.player.play().catch(() => {});
  }

  function togglePlay() {
    const p = current && current.player;
    if (!p || !current.audioOk) return;
    if (p.paused) p.play().catch(() => {}); else p.pause();
  }

  function rttm() {
    const { d } = current;
    const safe = (k) => speakerName(k).trim().replace(/\s+/g, "_") || d.speakers[k];
    return d.turns.map(([s, e, k]) => `SPEAKER ${d.uri} 1 ${s.toFixed(3)} ${(e - s).toFixed(3)} <NA> <NA> ${safe(k)} <NA> <NA>\n`).join("");
  }

  function download() {
    const blob = new Blob([rttm()], { type: "text/plain" });
    const a = el("a", { href: URL.createObjectURL(blob), download: `${current.d.uri}.rttm` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  function rename(k, value) {
    current.names[k] = value.trim();
    const lab = current.tl.node.querySelector(`.lane-label.hyp[data-speaker="${CSS.escape(current.d.speakers[k])}"]`);
    if (lab) { lab.textContent = speakerName(k); lab.title = speakerName(k); }
    current.tl.inner.querySelectorAll(`.turn[data-speaker="${CSS.escape(current.d.speakers[k])}"]`).forEach((b) => {
      b.setAttribute("aria-label", `${speakerName(k)}: ${fmtTime(+b.dataset.start)} to ${fmtTime(+b.dataset.end)}; play from start`);
      b.title = `${speakerName(k)}  ${fmtTime(+b.dataset.start)} – ${fmtTime(+b.dataset.end)}`;
    });
  }

  function speakers(d) {
    const talk = d.speakers.map(() => [0, 0]);
    for (const [s, e, k] of d.turns) { talk[k][0] += 1; talk[k][1] += e - s; }
    const rows = d.speakers.map((spk, k) => el("tr", {},
      el("th", { scope: "row" }, el("span", { class: "swatch", style: { background: COLOURS[k % COLOURS.length] } }), spk),
      el("td", {}, el("input", { type: "text", class: "name", "data-speaker": spk, value: d.names[spk] || "",
        placeholder: spk, "aria-label": `Name for ${spk}`, oninput: (ev) => rename(k, ev.target.value) })),
      el("td", { class: "num" }, String(talk[k][0])),
      el("td", { class: "num" }, `${talk[k][1].toFixed(1)} s`)));
    return el("section", { class: "speakers", "aria-label": "Speakers" },
      el("table", { class: "data" }, el("caption", { text: "Speakers (type a name to rename; the download uses it)" }),
        el("thead", {}, el("tr", {}, ["Label", "Name", "Turns", "Speech"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows)),
      el("button", { id: "download", onclick: download }, `Download ${d.uri}.rttm with these names`));
  }

  function derBox(d) {
    if (d.score) {
      const s = d.score;
      return el("p", { class: "der", id: "der" },
        el("strong", {}, `DER ${pct(s.der)}`),
        ` — missed ${pct(s.miss)}, false alarm ${pct(s.false_alarm)}, confusion ${pct(s.confusion)}; `
        + `JER ${pct(s.jer)}; ${s.ref_speakers} reference / ${s.hyp_speakers} detected speakers `
        + `(collar ${INDEX.collar} s, as mung score). Error lanes are drawn without the collar.`);
    }
    return d.ref_note ? note(d.ref_note) : null;
  }

  function render(i, d) {
    const names = d.speakers.map((spk) => d.names[spk] || "");
    current = { i, d, names, zoom: 1, player: null, audioOk: false, time: 0 };
    const tl = timeline(d);
    current.tl = tl;
    const audioNote = el("p", { class: "note", id: "audio-note", role: "status", hidden: true });
    let player = null;
    if (d.audio) {
      player = el("audio", { id: "player", controls: true, preload: "auto", src: audioUrl(d.audio),
        "aria-label": `Audio of ${d.uri}` });
      current.audioOk = true;
      player.addEventListener("error", () => {
        current.audioOk = false;
        audioNote.hidden = false;
        audioNote.textContent = `Audio missing: ${d.audio} could not be loaded (moved or deleted?). `
          + "The timeline is still shown.";
      });
      for (const ev of ["play", "seeked", "timeupdate", "pause"]) player.addEventListener(ev, tick);
    } else {
      audioNote.hidden = false;
      audioNote.textContent = `Audio missing: ${d.audio_note}. The timeline is still shown.`;
    }
    current.player = player;
    current.clock = el("span", { class: "clock", "aria-live": "off" });
    current.zoomLabel = el("span", { class: "zoom-label" }, "zoom ×1.0");
    const controls = el("div", { class: "controls", role: "toolbar", "aria-label": "Playback and zoom" },
      el("button", { id: "play", onclick: togglePlay, disabled: !player }, "Play / pause"),
      el("button", { onclick: () => seek((player ? player.currentTime : current.time) - SEEK) }, `−${SEEK} s`),
      el("button", { onclick: () => seek((player ? player.currentTime : current.time) + SEEK) }, `+${SEEK} s`),
      current.clock,
      el("button", { id: "zoom-in", onclick: () => zoom(2) }, "Zoom in"),
      el("button", { id: "zoom-out", onclick: () => zoom(0.5) }, "Zoom out"),
      el("button", { id: "zoom-fit", onclick: () => zoom(1 / current.zoom) }, "Fit"),
      current.zoomLabel);
    const detail = el("section", { id: "detail", "aria-label": `Recording ${d.uri}` },
      el("h2", {}, d.uri),
      el("p", { class: "sub" }, `${fmtTime(d.duration)} · ${d.speakers.length} speaker(s) · ${d.turns.length} turn(s)`),
      derBox(d), audioNote, player, controls,
      el("p", { class: "hint" }, "Keys: space play/pause · ← → seek 5 s · + − zoom · click a turn to play it, "
        + "click elsewhere on the timeline to seek; Ctrl+wheel zooms."),
      tl.node,
      speakers(d));
    document.getElementById("detail-slot").replaceChildren(detail);
    document.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
    document.querySelector(`tr[data-uri="${CSS.escape(d.uri)}"]`)?.classList.add("selected");
    drawRuler(); drawEnvelope(); updateCursor();
  }

  function open(i) {
    const slot = document.getElementById("detail-slot");
    slot.replaceChildren(el("p", { class: "sub" }, "Loading…"));
    return load(i).then((d) => {
      render(i, d);
      if (location.hash !== `#${encodeURIComponent(d.uri)}`) history.replaceState(null, "", `#${encodeURIComponent(d.uri)}`);
    }).catch((err) => slot.replaceChildren(note(`Could not load this recording: ${err.message}`, "note error")));
  }

  document.addEventListener("keydown", (ev) => {
    if (!current || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = ev.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || ev.target.isContentEditable) return;
    if (ev.key === " " && tag !== "BUTTON" && tag !== "AUDIO" && tag !== "A") { ev.preventDefault(); togglePlay(); }
    else if (ev.key === "ArrowLeft" && tag !== "AUDIO") { ev.preventDefault(); seek((current.player ? current.player.currentTime : current.time) - SEEK); }
    else if (ev.key === "ArrowRight" && tag !== "AUDIO") { ev.preventDefault(); seek((current.player ? current.player.currentTime : current.time) + SEEK); }
    else if (ev.key === "+" || ev.key === "=") zoom(2);
    else if (ev.key === "-") zoom(0.5);
  });
  window.addEventListener("resize", () => { if (current) { drawRuler(); drawEnvelope(); } });

  if (!recs.length) {
    app.replaceChildren(note("No results: this page holds no diarization results (0 recordings). "
      + "Run mung diarize AUDIO --out DIR --html on some audio.", "note empty"));
    ready();
    return;
  }
  const total = INDEX.total
    ? el("p", { class: "der total", id: "total-der" }, `Overall DER ${pct(INDEX.total.der)} over the scored recordings `
      + `(collar ${INDEX.collar} s).`)
    : null;
  const tbl = list();
  app.replaceChildren(el("div", { class: "diar" },
    el("aside", { class: "list", "aria-label": "Recordings" }, total, tbl.node),
    el("div", { id: "detail-slot" })));
  const wanted = decodeURIComponent(location.hash.slice(1));
  const first = recs.find((r) => r.uri === wanted) || recs[0];
  open(first.i).then(ready);
})();

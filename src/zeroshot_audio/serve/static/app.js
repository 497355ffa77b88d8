// zeroshot-audio page: plain ES2020, no framework, no network access beyond this server (relative URLs only).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MB = 1e6; // the server's MB (ServeOptions.max_upload_bytes)
  const PRESENT = 0.5; // the probability at which the server judges a label present (tagging.PRESENT)
  const MAX_TIMELINES = 5; // timelines drawn at first per file (more can be ticked)
  const MAX_BUSY_RETRIES = 60; // 503 retries before giving up
  const DECODE_LIMIT = 250 * MB;
  const FORM_OVERHEAD = 1024; // bytes of multipart framing counted per file (the server limits the whole body) // larger local files are not decoded for a waveform
  const ENVELOPE_BINS = 4096; // waveform resolution kept in memory

  const EXAMPLE_SETS = {
    "Animals": "dog barking\ncat meowing\na rooster crowing\ncow mooing\nbirds singing\nhorse neighing",
    "Around the house": "door knock\nfootsteps\nwater running from a tap\nvacuum cleaner\nspeech\nphone ringing\nclock ticking",
    "Street and traffic": "car horn\ncar passing by\nsiren\nbicycle bell\ntrain\npeople talking\nfootsteps",
    "Weather and nature": "rain\nthunder\nwind\nwater flowing in a stream\nbirds singing\nwaves on a beach",
    "Music": "piano\nguitar\ndrums\nviolin\nsinging\nchurch bells",
  };

  const state = {
    health: null,
    limits: null,
    models: null,
    queue: [], // {id, file, name, size}
    examples: [], // {id, label, file, name, size}: clips of labels given by example
    nextId: 1,
    running: false,
    run: null, // the last run: {text, results, selected, urls, cards}
  };

  // ------------------------------------------------------------------------------------------- helpers
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const oneLine = (msg) => {
    const line = String(msg ?? "").split(/\r?\n/).find((s) => s.trim()) || "unknown error";
    return line.length > 400 ? line.slice(0, 397) + "…" : line;
  };
  const fmtSize = (bytes) => bytes >= MB ? `${(bytes / MB).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1000))} kB`;
  const fmtTime = (s) => {
    if (!Number.isFinite(s)) return "?";
    if (s < 59.95) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    const total = Math.round(s);
    const m = Math.floor(total / 60);
    if (m >= 60) return m % 60 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min` : `${m / 60} h`;
    return `${m} min ${String(total % 60).padStart(2, "0")} s`;
  };
  const fmtPct = (p) => `${(100 * p).toFixed(1)} %`;
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const store = (area, key, value) => {
    try {
      if (value === null) area.removeItem(key);
      else area.setItem(key, value);
    } catch (e) { /* storage disabled: keep working without it */ }
  };
  const load = (area, key) => {
    try { return area.getItem(key); } catch (e) { return null; }
  };

  /** Labels as the server reads them: split on ";" and line breaks, whitespace collapsed, empty ones dropped,
   * duplicates dropped (order kept). */
  const parseLabels = (text) => {
    const seen = new Set();
    for (const raw of text.split(/[;\r\n]+/)) {
      const label = raw.split(/\s+/).filter(Boolean).join(" ")
        .split("|").map((w) => w.trim()).filter(Boolean).join("|");
      if (label) seen.add(label);
    }
    return [...seen];
  };

  // ------------------------------------------------------------------------------------------- server status
  const token = () => $("token").value.trim();
  const authHeaders = () => (state.health && state.health.auth && token() ? { Authorization: `Bearer ${token()}` } : {});

  async function loadHealth() {
    const status = $("server-status");
    try {
      const resp = await fetch("v1/health", { cache: "no-store" });
      const body = await resp.json();
      if (!resp.ok || body.status !== "ok") throw new Error(body.error || `HTTP ${resp.status}`);
      state.health = body;
      state.limits = body.limits || null;
      status.textContent = `Server ready · model ${body.model}`;
      status.className = "server-status ok";
      $("token-field").hidden = !body.auth;
      showLimits();
      loadModels();
    } catch (e) {
      status.textContent = `Cannot reach the server (${oneLine(e.message)}); retrying…`;
      status.className = "server-status bad";
      setTimeout(loadHealth, 5000);
    }
  }

  async function loadModels() {
    try {
      const resp = await fetch("v1/models", { headers: authHeaders(), cache: "no-store" });
      if (!resp.ok) return; // a missing token: the header keeps the health line
      const models = await resp.json();
      const m = Array.isArray(models) ? models[0] : null;
      if (!m) return;
      state.models = models;
      const parts = [m.embedder, m.label_encoder].filter(Boolean).join(" + ");
      $("server-status").textContent = `Server ready · model ${m.name}${parts ? ` (${parts})` : ""}`;
      if (Array.isArray(m.labels_example) && m.labels_example.length) {
        EXAMPLE_SETS["Some classes the model learned from"] = m.labels_example.join("\n");
        fillSets();
      }
    } catch (e) { /* optional information */ }
  }

  function showLimits() {
    const l = state.limits;
    if (!l) return;
    const parts = [];
    if (l.max_files) parts.push(`up to ${l.max_files} files`);
    if (l.max_upload_mb) parts.push(`${l.max_upload_mb} MB per run`);
    if (l.max_duration_s) parts.push(`${fmtTime(l.max_duration_s)} of audio per file`);
    if (l.max_labels) parts.push(`${l.max_labels} labels`);
    $("limits").textContent = `Server limits: ${parts.join(", ")}. WAV, FLAC, OGG and MP3 files.`;
    updateLabelCount();
  }

  // ------------------------------------------------------------------------------------------- file queue
  function queueNote(text) {
    const note = $("queue-note");
    note.textContent = text || "";
    note.hidden = !text;
  }

  function addFiles(fileList) {
    const l = state.limits || {};
    const refused = [];
    for (const file of fileList) {
      if (l.max_files && state.queue.length >= l.max_files) {
        refused.push(`${file.name}: the server takes at most ${l.max_files} files per run`);
        continue;
      }
      if (l.max_upload_mb && file.size + FORM_OVERHEAD > l.max_upload_mb * MB) {
        refused.push(`${file.name}: ${fmtSize(file.size)} is over the server's limit of ${l.max_upload_mb} MB`);
        continue;
      }
      if (file.size === 0) {
        refused.push(`${file.name}: the file is empty`);
        continue;
      }
      state.queue.push({ id: state.nextId++, file, name: file.name || "recording.wav", size: file.size });
    }
    queueNote(refused.length ? `Not added: ${refused.join("; ")}.` : "");
    renderQueue();
  }

  function renderQueue() {
    const list = $("queue");
    list.replaceChildren();
    for (const item of state.queue) {
      list.append(el("li", { dataset: { testid: "queue-item" } },
        el("span", { class: "q-name", title: item.name, text: item.name }),
        el("span", { class: "q-size", text: fmtSize(item.size) }),
        el("button", {
          type: "button", class: "q-remove", "aria-label": `Remove ${item.name}`, title: "Remove", text: "×",
          onclick: () => {
            state.queue = state.queue.filter((q) => q.id !== item.id);
            queueNote("");
            renderQueue();
          },
        })));
    }
    const total = state.queue.reduce((s, q) => s + q.size, 0);
    $("run").textContent = state.queue.length ? `Tag ${state.queue.length} file${state.queue.length > 1 ? "s" : ""}` : "Tag files";
    $("dropzone").querySelector(".dz-sub").textContent = state.queue.length
      ? `${state.queue.length} chosen (${fmtSize(total)}); add more or click to choose`
      : "or click to choose (several at once)";
  }

  // ------------------------------------------------------------------------------- labels by example

  function exampleNote(text) {
    const note = $("example-note");
    note.textContent = text;
    note.hidden = !text;
  }

  function exampleLabels() {
    return [...new Set(state.examples.map((x) => x.label))];
  }

  function addExamples(fileList) {
    const label = parseLabels($("example-label").value).join(" ");
    if (!label) { exampleNote("Type the label of the clips first."); $("example-label").focus(); return; }
    const refused = [];
    for (const file of fileList) {
      if (file.size === 0) { refused.push(`${file.name}: the file is empty`); continue; }
      state.examples.push({ id: state.nextId++, label, file, name: file.name || "example.wav", size: file.size });
    }
    exampleNote(refused.length ? `Not added: ${refused.join("; ")}.` : "");
    renderExamples();
    updateLabelCount();
  }

  function renderExamples() {
    const list = $("example-list");
    list.replaceChildren();
    for (const item of state.examples) {
      list.append(el("li", { dataset: { testid: "example-item", label: item.label } },
        el("span", { class: "q-name", title: `${item.label}: ${item.name}`, text: `${item.label}: ${item.name}` }),
        el("span", { class: "q-size", text: fmtSize(item.size) }),
        el("button", {
          type: "button", class: "q-remove", "aria-label": `Remove ${item.name} (${item.label})`, title: "Remove",
          text: "×",
          onclick: () => {
            state.examples = state.examples.filter((q) => q.id !== item.id);
            exampleNote("");
            renderExamples();
            updateLabelCount();
          },
        })));
    }
  }

  function setUpExamples() {
    const input = $("example-input");
    $("example-pick").addEventListener("click", () => {
      if (!parseLabels($("example-label").value).length) {
        exampleNote("Type the label of the clips first.");
        $("example-label").focus();
        return;
      }
      input.click();
    });
    input.addEventListener("change", () => {
      addExamples(input.files);
      input.value = "";
    });
  }

  function setUpDropZone() {
    const zone = $("dropzone");
    const input = $("file-input");
    zone.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      addFiles([...input.files]);
      input.value = "";
    });
    // the whole page takes drops, so a file missing the zone is not opened by the browser instead
    let depth = 0;
    document.addEventListener("dragenter", (e) => {
      if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
      depth++;
      zone.classList.add("over");
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) zone.classList.remove("over");
    });
    document.addEventListener("dragover", (e) => e.preventDefault());
    document.addEventListener("drop", (e) => {
      e.preventDefault();
      depth = 0;
      zone.classList.remove("over");
      if (e.dataTransfer?.files?.length) addFiles([...e.dataTransfer.files]);
    });
  }

  // ------------------------------------------------------------------------------------------- microphone
  /** A 16-bit PCM mono WAV of float samples in [-1, 1]. */
  function encodeWav(samples, sampleRate) {
    const buffer = new ArrayBuffer(44 + 2 * samples.length);
    const v = new DataView(buffer);
    const text = (offset, s) => { for (let i = 0; i < s.length; i++) v.setUint8(offset + i, s.charCodeAt(i)); };
    text(0, "RIFF"); v.setUint32(4, 36 + 2 * samples.length, true); text(8, "WAVE");
    text(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
    v.setUint32(24, sampleRate, true); v.setUint32(28, 2 * sampleRate, true); v.setUint16(32, 2, true);
    v.setUint16(34, 16, true); text(36, "data"); v.setUint32(40, 2 * samples.length, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      v.setInt16(44 + 2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buffer], { type: "audio/wav" });
  }

  function setUpRecorder() {
    const button = $("record");
    const note = $("record-note");
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!navigator.mediaDevices?.getUserMedia || !Ctx) {
      button.disabled = true;
      note.textContent = window.isSecureContext
        ? "This browser offers no microphone access."
        : "Recording needs a secure page (https, or this server opened as localhost/127.0.0.1).";
      return;
    }
    let rec = null;
    const stop = () => {
      if (!rec) return;
      const { stream, ctx, source, proc, sink, chunks, timer, started } = rec;
      rec = null;
      clearInterval(timer);
      stream.getTracks().forEach((t) => t.stop());
      source.disconnect(); proc.disconnect(); sink.disconnect();
      const n = chunks.reduce((s, c) => s + c.length, 0);
      const samples = new Float32Array(n);
      let at = 0;
      for (const c of chunks) { samples.set(c, at); at += c.length; }
      const rate = ctx.sampleRate;
      ctx.close();
      button.textContent = "● Record";
      button.classList.remove("recording");
      button.setAttribute("aria-pressed", "false");
      if (n < rate * 0.2) {
        note.textContent = "Recording too short; nothing added.";
        return;
      }
      const stamp = new Date(started).toISOString().slice(0, 19).replace(/[:T]/g, "-");
      const file = new File([encodeWav(samples, rate)], `recording-${stamp}.wav`, { type: "audio/wav" });
      note.textContent = `Recorded ${fmtTime(n / rate)}; added to the files.`;
      addFiles([file]);
    };
    button.addEventListener("click", async () => {
      if (rec) { stop(); return; }
      try {
        const stream = await navigator.mediaDevices.getUserMedia({
          audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
        });
        const ctx = new Ctx();
        const source = ctx.createMediaStreamSource(stream);
        const proc = ctx.createScriptProcessor(4096, 1, 1);
        const sink = ctx.createGain();
        sink.gain.value = 0; // the processor must reach the destination to run; keep it silent
        const chunks = [];
        const maxSeconds = Math.min(state.limits?.max_duration_s || 600, 600);
        proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
        source.connect(proc); proc.connect(sink); sink.connect(ctx.destination);
        const started = Date.now();
        const timer = setInterval(() => {
          const s = (Date.now() - started) / 1000;
          note.textContent = `Recording… ${s.toFixed(0)} s (press Stop to finish)`;
          if (s >= maxSeconds) stop();
        }, 250);
        rec = { stream, ctx, source, proc, sink, chunks, timer, started };
        button.textContent = "■ Stop";
        button.classList.add("recording");
        button.setAttribute("aria-pressed", "true");
        note.textContent = "Recording…";
      } catch (e) {
        note.textContent = `No recording: ${oneLine(e.message || e.name)}`;
      }
    });
  }

  // ------------------------------------------------------------------------------------------- labels
  const SETS_KEY = "zsa-label-sets";
  const LABELS_KEY = "zsa-labels";
  const savedSets = () => {
    try { return JSON.parse(load(localStorage, SETS_KEY) || "{}") || {}; } catch (e) { return {}; }
  };

  function fillSets(selected = "") {
    const select = $("label-set");
    const saved = savedSets();
    select.replaceChildren(el("option", { value: "", text: "Choose a label set…" }));
    const mine = Object.keys(saved).sort((a, b) => a.localeCompare(b));
    if (mine.length) {
      const group = el("optgroup", { label: "Saved" });
      for (const name of mine) group.append(el("option", { value: `saved:${name}`, text: name }));
      select.append(group);
    }
    const examples = el("optgroup", { label: "Examples" });
    for (const name of Object.keys(EXAMPLE_SETS)) examples.append(el("option", { value: `example:${name}`, text: name }));
    select.append(examples);
    select.value = selected;
    if (select.value !== selected) select.value = "";
    $("set-delete").disabled = !select.value.startsWith("saved:");
  }

  function updateLabelCount() {
    const n = new Set([...parseLabels($("labels").value), ...exampleLabels()]).size;
    const max = state.limits?.max_labels;
    const out = $("label-count");
    out.textContent = n ? `${n} label${n > 1 ? "s" : ""}${max && n > max ? ` — over the server's limit of ${max}` : ""}.` : "";
    out.className = max && n > max ? "note warn" : "";
  }

  function setUpLabels() {
    const area = $("labels");
    const select = $("label-set");
    area.value = load(localStorage, LABELS_KEY) ?? EXAMPLE_SETS["Animals"];
    area.addEventListener("input", () => {
      store(localStorage, LABELS_KEY, area.value);
      updateLabelCount();
    });
    fillSets();
    select.addEventListener("change", () => {
      const [kind, ...rest] = select.value.split(":");
      const name = rest.join(":");
      const text = kind === "saved" ? savedSets()[name] : kind === "example" ? EXAMPLE_SETS[name] : null;
      if (text != null) {
        area.value = text;
        store(localStorage, LABELS_KEY, text);
        updateLabelCount();
      }
      $("set-delete").disabled = kind !== "saved";
    });
    $("set-save").addEventListener("click", () => {
      const labels = parseLabels(area.value);
      if (!labels.length) { status("Type some labels before saving them as a set.", "error"); return; }
      const current = select.value.startsWith("saved:") ? select.value.slice(6) : "";
      const name = (window.prompt("Save these labels as:", current) || "").trim();
      if (!name) return;
      const sets = savedSets();
      sets[name] = labels.join("\n");
      store(localStorage, SETS_KEY, JSON.stringify(sets));
      fillSets(`saved:${name}`);
      status(`Saved the label set “${name}” (${labels.length} labels) in this browser.`);
    });
    $("set-delete").addEventListener("click", () => {
      if (!select.value.startsWith("saved:")) return;
      const name = select.value.slice(6);
      const sets = savedSets();
      delete sets[name];
      store(localStorage, SETS_KEY, JSON.stringify(sets));
      fillSets();
      status(`Deleted the label set “${name}”.`);
    });
    updateLabelCount();
  }

  // ------------------------------------------------------------------------------------------- run
  function status(text, kind = "") {
    const s = $("run-status");
    s.textContent = text;
    s.className = `run-status ${kind}`;
  }

  function readOptions() {
    const topRaw = $("top-k").value.trim();
    const thrRaw = $("threshold").value.trim();
    const out = { top_k: null, threshold: null };
    if (topRaw) {
      const k = Number(topRaw);
      if (!Number.isInteger(k) || k < 1) throw new Error("“Show top” must be a whole number of at least 1 (or empty for all).");
      out.top_k = k;
    }
    if (thrRaw) {
      const p = Number(thrRaw);
      if (!Number.isFinite(p) || p < 0 || p > 1) throw new Error("“Min. probability” must be between 0 and 1 (or empty for none).");
      out.threshold = p;
    }
    return out;
  }

  /** POST the form with XMLHttpRequest (upload progress); resolves {status, text, retryAfter}. */
  function post(form, onUpload) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "v1/tag");
      for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
      xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onUpload(e.loaded / e.total); });
      xhr.upload.addEventListener("load", () => onUpload(1));
      xhr.addEventListener("load", () => resolve({
        status: xhr.status, statusText: xhr.statusText, text: xhr.responseText,
        retryAfter: xhr.getResponseHeader("Retry-After"),
      }));
      xhr.addEventListener("error", () => reject(new Error("the connection to the server failed")));
      xhr.addEventListener("abort", () => reject(new Error("the request was aborted")));
      xhr.send(form);
    });
  }

  async function run() {
    if (state.running) return;
    if (!state.queue.length) { status("Add at least one audio file first.", "error"); $("dropzone").focus(); return; }
    const labels = parseLabels($("labels").value);
    const byExample = exampleLabels();
    if (!labels.length && !byExample.length) {
      status("Type at least one label (or give one by example clips).", "error"); $("labels").focus(); return;
    }
    const l = state.limits || {};
    const nLabels = new Set([...labels, ...byExample]).size;
    if (l.max_labels && nLabels > l.max_labels) {
      status(`${nLabels} labels: the server takes at most ${l.max_labels}.`, "error"); return;
    }
    const nFiles = state.queue.length + state.examples.length;
    if (l.max_files && nFiles > l.max_files) {
      status(`${nFiles} files with the example clips: the server takes at most ${l.max_files} per run.`, "error");
      return;
    }
    const total = [...state.queue, ...state.examples].reduce((s, q) => s + q.size + FORM_OVERHEAD,
      4 * labels.join("\n").length + 4096);
    if (l.max_upload_mb && total > l.max_upload_mb * MB) {
      status(`The files add up to ${fmtSize(total)}, over the server's limit of ${l.max_upload_mb} MB per run: remove some.`, "error");
      return;
    }
    if (state.health?.auth && !token()) {
      status("This server needs an access token: enter it above.", "error"); $("token").focus(); return;
    }
    let options;
    try { options = readOptions(); } catch (e) { status(e.message, "error"); return; }

    const items = state.queue.slice();
    const form = new FormData();
    for (const item of items) form.append("files", item.file, item.name);
    for (const label of labels) form.append("labels", label);
    for (const ex of state.examples) form.append(`example:${ex.label}`, ex.file, ex.name);
    if (options.top_k !== null) form.append("top_k", String(options.top_k));
    if (options.threshold !== null) form.append("threshold", String(options.threshold));
    form.append("timelines", "true");

    clearResults();
    const cards = items.map((item) => makeCard(item));
    state.running = true;
    $("run").disabled = true;
    $("results").setAttribute("aria-busy", "true");
    const started = Date.now();
    let phase = "Uploading";
    let retryNote = "";
    const what = `${items.length} file${items.length > 1 ? "s" : ""}`;
    const tick = () => status(`${phase} ${what}… ${((Date.now() - started) / 1000).toFixed(0)} s${retryNote}`, "busy");
    tick();
    const ticker = setInterval(tick, 500);
    try {
      for (let attempt = 0; ; attempt++) {
        const resp = await post(form, (f) => {
          phase = f < 1 ? `Uploading (${Math.round(100 * f)} %)` : "Tagging";
          tick();
        });
        if (resp.status === 503 && attempt < MAX_BUSY_RETRIES) {
          const wait = Math.min(30, Math.max(1, Number(resp.retryAfter) || 1));
          retryNote = ` · the server is busy: retrying in ${wait} s (attempt ${attempt + 2})`;
          phase = "Waiting to tag";
          tick();
          await sleep(1000 * wait);
          continue;
        }
        finishRun(resp, items, cards, options);
        break;
      }
    } catch (e) {
      for (const card of cards) failCard(card, `not tagged: ${oneLine(e.message)}`);
      status(`Could not tag: ${oneLine(e.message)}.`, "error");
    } finally {
      clearInterval(ticker);
      state.running = false;
      $("run").disabled = false;
      $("results").removeAttribute("aria-busy");
    }
  }

  function finishRun(resp, items, cards, options) {
    let body = null;
    try { body = JSON.parse(resp.text); } catch (e) { /* not JSON: reported below */ }
    if (resp.status === 200 && Array.isArray(body)) {
      state.run = { text: resp.text, results: body, selected: options.top_k !== null || options.threshold !== null };
      body.forEach((entry, i) => fillCard(cards[i] || makeCard({ name: entry.file }), entry, items[i]));
      const ok = body.filter((e) => !e.error).length;
      const bad = body.length - ok;
      status(`Tagged ${ok} file${ok === 1 ? "" : "s"}${bad ? `; ${bad} failed (see the card${bad > 1 ? "s" : ""})` : ""}.`,
        bad ? "error" : "");
      $("downloads").hidden = !ok;
      return;
    }
    const message = body && typeof body.error === "string" ? oneLine(body.error)
      : `the server answered HTTP ${resp.status} ${resp.statusText || ""}`.trim();
    if (body && Array.isArray(body.results)) {
      state.run = { text: resp.text, results: body.results, selected: false };
      body.results.forEach((entry, i) => fillCard(cards[i] || makeCard({ name: entry.file }), entry, items[i]));
      status(`No file could be tagged: ${message}`, "error");
      return;
    }
    for (const card of cards) card.root.remove();
    $("empty").hidden = false;
    status(`Not tagged: ${message}`, "error");
    if (resp.status === 401) {
      $("token-field").hidden = false;
      $("token").focus();
    }
  }

  // ------------------------------------------------------------------------------------------- results
  function clearResults() {
    for (const ro of state.observers) ro.disconnect();
    state.observers = [];
    state.urls.forEach((u) => URL.revokeObjectURL(u));
    state.urls = [];
    state.cards = [];
    state.run = null;
    $("downloads").hidden = true;
    $("results").querySelectorAll(".card").forEach((c) => c.remove());
    $("empty").hidden = true;
  }

  function makeCard(item) {
    const root = $("card-template").content.firstElementChild.cloneNode(true);
    const card = {
      root, item,
      title: root.querySelector(".card-title"),
      meta: root.querySelector(".card-meta"),
      error: root.querySelector(".card-error"),
      audio: root.querySelector(".player"),
      viz: root.querySelector(".viz"),
      wave: root.querySelector(".wave"),
      timelines: root.querySelector(".timelines"),
      playhead: root.querySelector(".playhead"),
      note: root.querySelector(".card-note"),
      list: root.querySelector(".label-list"),
      envelope: null, // waveform min/max bins over the server's duration
      entry: null,
      shown: new Set(), // labels whose timeline is drawn
      canvases: [],
    };
    root.dataset.file = item.name;
    card.title.textContent = item.name;
    card.meta.textContent = item.size ? fmtSize(item.size) : "";
    if (item.file) {
      const url = URL.createObjectURL(item.file);
      state.urls.push(url);
      card.audio.src = url;
    }
    $("results").append(root);
    state.cards.push(card);
    return card;
  }

  function failCard(card, message) {
    card.root.classList.add("failed");
    card.root.classList.remove("done");
    card.root.dataset.status = "error";
    card.error.textContent = message;
    card.error.hidden = false;
    card.audio.hidden = true;
  }

  function fillCard(card, entry, item) {
    card.entry = entry;
    card.title.textContent = entry.file;
    card.root.dataset.file = entry.file;
    if (entry.error !== undefined) {
      failCard(card, `${oneLine(entry.error)}${entry.status ? ` (${entry.status})` : ""}`);
      return;
    }
    const labels = Array.isArray(entry.labels) ? entry.labels : [];
    const present = labels.filter((r) => r.present);
    card.meta.textContent = `${fmtTime(entry.duration)} · ${present.length} of ${labels.length} shown label${labels.length === 1 ? "" : "s"} present`;
    card.root.classList.add("done");
    card.root.dataset.status = "done";
    const withTimeline = labels.filter((r) => r.timeline && Array.isArray(r.timeline.probability));
    const first = (present.length ? withTimeline.filter((r) => r.present) : withTimeline.slice(0, 1)).slice(0, MAX_TIMELINES);
    if (!first.length && withTimeline.length) first.push(withTimeline[0]);
    card.shown = new Set(first.map((r) => r.label));

    card.list.replaceChildren();
    for (const r of labels) card.list.append(labelRow(card, r));
    if (withTimeline.length) {
      card.list.before(el("p", { class: "hint tick-hint", text: "Tick a label to show or hide its timeline." }));
    }
    renderTimelines(card);
    setUpPlayback(card);
    loadWaveform(card, item);
    const ro = new ResizeObserver(() => redraw(card));
    ro.observe(card.viz);
    state.observers.push(ro);
  }

  function labelRow(card, r) {
    const id = `t${Math.random().toString(36).slice(2, 10)}`;
    const hasTimeline = r.timeline && Array.isArray(r.timeline.probability);
    const name = el("span", { class: "label-name" });
    if (hasTimeline) {
      const box = el("input", { type: "checkbox", id, "aria-label": `Timeline of ${r.label}` });
      box.checked = card.shown.has(r.label);
      box.addEventListener("change", () => {
        if (box.checked) card.shown.add(r.label); else card.shown.delete(r.label);
        renderTimelines(card);
      });
      name.append(box, " ");
    }
    name.append(el("label", hasTimeline ? { for: id, text: r.label } : { text: r.label }));
    if (r.present) name.append(el("span", { class: "badge", text: "present" }));
    if (r.present && r.events?.length) {
      const when = r.events.slice(0, 4).map((e) => `${e.onset.toFixed(1)}–${e.offset.toFixed(1)} s`).join(", ");
      name.append(el("span", { class: "events-text", text: `events: ${when}${r.events.length > 4 ? ` … (${r.events.length})` : ""}` }));
    }
    const bar = el("span", { class: "bar", "aria-hidden": "true" }, el("span"));
    bar.firstChild.style.width = `${Math.max(0, Math.min(1, r.probability)) * 100}%`;
    return el("li", {
      class: `label-row${r.present ? " present" : ""}`,
      dataset: { testid: "label-row", label: r.label, present: String(Boolean(r.present)), probability: String(r.probability) },
    }, name, bar, el("span", { class: "prob", text: fmtPct(r.probability), title: `score ${r.score}` }));
  }

  function renderTimelines(card) {
    const { entry } = card;
    card.timelines.replaceChildren();
    card.canvases = [];
    for (const r of entry.labels) {
      if (!card.shown.has(r.label)) continue;
      const peak = Math.max(0, ...r.timeline.probability);
      const canvas = el("canvas", {
        class: "timeline", role: "img", dataset: { testid: "timeline", label: r.label },
        "aria-label": `Per-segment probability of ${r.label} over time (peak ${fmtPct(peak)}); click to seek`,
      });
      canvas.addEventListener("click", (e) => seekFromClick(card, canvas, e));
      card.timelines.append(
        el("div", { class: "tl-caption" },
          el("span", { class: "tl-name", text: r.label }),
          el("span", { text: `peak ${fmtPct(peak)}${r.present ? " · present" : ""}` })),
        canvas);
      card.canvases.push({ canvas, label: r });
    }
    redraw(card);
  }

  function seekFromClick(card, canvas, e) {
    const rect = canvas.getBoundingClientRect();
    const frac = Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width));
    seek(card, frac * card.entry.duration);
  }

  function seek(card, t) {
    const d = card.entry.duration;
    t = Math.max(0, Math.min(d, t));
    try { card.audio.currentTime = t; } catch (e) { /* not seekable yet */ }
    card.seekTo = t;
    movePlayhead(card, t);
  }

  function movePlayhead(card, t) {
    const d = card.entry?.duration;
    if (!d) return;
    card.playhead.style.left = `${(100 * Math.max(0, Math.min(d, t))) / d}%`;
    card.playhead.classList.add("on");
  }

  function setUpPlayback(card) {
    const { audio, wave } = card;
    let raf = 0;
    const follow = () => {
      movePlayhead(card, audio.currentTime);
      if (!audio.paused && !audio.ended) raf = requestAnimationFrame(follow);
    };
    audio.addEventListener("play", () => { cancelAnimationFrame(raf); raf = requestAnimationFrame(follow); });
    audio.addEventListener("timeupdate", () => movePlayhead(card, audio.currentTime));
    audio.addEventListener("seeked", () => movePlayhead(card, audio.currentTime));
    movePlayhead(card, 0);
    wave.tabIndex = 0;
    wave.addEventListener("click", (e) => seekFromClick(card, wave, e));
    wave.addEventListener("keydown", (e) => {
      const step = e.shiftKey ? 10 : 1;
      const now = Number.isFinite(audio.currentTime) ? audio.currentTime : card.seekTo || 0;
      if (e.key === "ArrowRight") { seek(card, now + step); e.preventDefault(); }
      else if (e.key === "ArrowLeft") { seek(card, now - step); e.preventDefault(); }
      else if (e.key === " " || e.key === "Enter") {
        if (audio.paused) audio.play().catch(() => {}); else audio.pause();
        e.preventDefault();
      }
    });
    wave.setAttribute("aria-label", `Waveform of ${card.entry.file}; click, or use the arrow keys, to seek; space plays`);
  }

  // ------------------------------------------------------------------------------------------- drawing
  async function loadWaveform(card, item) {
    const note = (text) => { card.note.textContent = text; card.note.hidden = !text; };
    if (!item?.file) { note("No local copy of this file: waveform not shown."); redraw(card); return; }
    if (item.file.size > DECODE_LIMIT) { note("File too large to draw its waveform here."); redraw(card); return; }
    const Offline = window.OfflineAudioContext || window.webkitOfflineAudioContext;
    try {
      if (!Offline) throw new Error("no Web Audio");
      const data = await item.file.arrayBuffer();
      const ctx = new Offline(1, 1, 22050);
      const buffer = await new Promise((resolve, reject) => {
        const p = ctx.decodeAudioData(data, resolve, reject);
        if (p && p.catch) p.catch(reject);
      });
      card.envelope = envelope(buffer, card.entry.duration);
    } catch (e) {
      note("This browser cannot decode this file, so its waveform is not drawn (and it may not play here); "
        + "the results come from the server.");
      card.root.dataset.waveform = "undecodable";
    }
    redraw(card);
  }

  /** Min/max of the mixed-down signal in ENVELOPE_BINS equal bins over [0, duration]. */
  function envelope(buffer, duration) {
    const n = ENVELOPE_BINS;
    const lo = new Float32Array(n);
    const hi = new Float32Array(n);
    const channels = [];
    for (let c = 0; c < buffer.numberOfChannels; c++) channels.push(buffer.getChannelData(c));
    const rate = buffer.sampleRate;
    const total = buffer.length;
    let peak = 0;
    for (let b = 0; b < n; b++) {
      const a = Math.floor(((b * duration) / n) * rate);
      const z = Math.min(total, Math.floor((((b + 1) * duration) / n) * rate));
      let mn = 0, mx = 0;
      for (let i = a; i < z; i++) {
        let s = 0;
        for (const ch of channels) s += ch[i];
        s /= channels.length;
        if (s < mn) mn = s;
        if (s > mx) mx = s;
      }
      lo[b] = mn; hi[b] = mx;
      peak = Math.max(peak, -mn, mx);
    }
    return { lo, hi, peak: peak || 1 };
  }

  /** Size a canvas's backing store to its CSS box (device pixels); returns [ctx, width, height] in CSS px. */
  function prepare(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, canvas.clientWidth);
    const h = Math.max(1, canvas.clientHeight);
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return [ctx, w, h];
  }

  function tickStep(duration, width) {
    const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const most = Math.max(2, Math.floor(width / 70));
    return steps.find((s) => duration / s <= most) || 3600;
  }

  function drawWave(card) {
    const canvas = card.wave;
    const [ctx, w, h] = prepare(canvas);
    const d = card.entry.duration;
    const grid = cssVar("--grid");
    const muted = cssVar("--muted");
    const step = tickStep(d, w);
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "top";
    for (let t = 0; t <= d + 1e-9; t += step) {
      const x = Math.round((t / d) * w) + 0.5;
      ctx.fillStyle = grid;
      ctx.fillRect(x, 0, 1, h);
      ctx.fillStyle = muted;
      if (x < w - 24) ctx.fillText(t >= 60 ? `${Math.floor(t / 60)}:${String(Math.round(t % 60)).padStart(2, "0")}` : `${t} s`, x + 3, 2);
    }
    const env = card.envelope;
    const mid = h / 2;
    if (!env) {
      ctx.fillStyle = grid;
      ctx.fillRect(0, mid, w, 1);
      canvas.dataset.drawn = "false";
      return;
    }
    ctx.fillStyle = cssVar("--wave");
    const n = env.lo.length;
    const scale = (0.9 * mid) / env.peak;
    for (let x = 0; x < w; x++) {
      const a = Math.floor((x / w) * n);
      const z = Math.max(a + 1, Math.floor(((x + 1) / w) * n));
      let mn = 0, mx = 0;
      for (let b = a; b < z && b < n; b++) { if (env.lo[b] < mn) mn = env.lo[b]; if (env.hi[b] > mx) mx = env.hi[b]; }
      const top = mid - mx * scale;
      ctx.fillRect(x, top, 1, Math.max(1, (mx - mn) * scale));
    }
    canvas.dataset.drawn = "true";
  }

  function drawTimeline(card, canvas, r) {
    const [ctx, w, h] = prepare(canvas);
    const d = card.entry.duration;
    const frames = card.entry.frames || [];
    const prob = r.timeline.probability;
    const x = (t) => (Math.max(0, Math.min(d, t)) / d) * w;
    const pad = 3;
    const y = (p) => h - pad - Math.max(0, Math.min(1, p)) * (h - 2 * pad);
    ctx.fillStyle = cssVar("--event");
    for (const ev of r.events || []) ctx.fillRect(x(ev.onset), 0, Math.max(1, x(ev.offset) - x(ev.onset)), h);
    ctx.strokeStyle = cssVar("--muted");
    ctx.globalAlpha = 0.5;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(0, Math.round(y(PRESENT)) + 0.5);
    ctx.lineTo(w, Math.round(y(PRESENT)) + 0.5);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    ctx.fillStyle = cssVar("--muted");
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    ctx.textAlign = "right";
    ctx.fillText("0.5", w - 3, Math.round(y(PRESENT)) - 1);
    ctx.textAlign = "left";
    const n = Math.min(prob.length, Math.max(0, frames.length - 1));
    if (n > 0) {
      const color = cssVar(r.present ? "--present" : "--accent");
      ctx.beginPath();
      ctx.moveTo(x(frames[0]), h);
      for (let t = 0; t < n; t++) {
        ctx.lineTo(x(frames[t]), y(prob[t]));
        ctx.lineTo(x(frames[t + 1]), y(prob[t]));
      }
      ctx.lineTo(x(frames[n]), h);
      ctx.closePath();
      ctx.fillStyle = color;
      ctx.globalAlpha = 0.35;
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.beginPath();
      for (let t = 0; t < n; t++) {
        if (t === 0) ctx.moveTo(x(frames[0]), y(prob[0]));
        else ctx.lineTo(x(frames[t]), y(prob[t]));
        ctx.lineTo(x(frames[t + 1]), y(prob[t]));
      }
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.lineWidth = 1;
    }
    canvas.dataset.drawn = "true";
  }

  function redraw(card) {
    if (!card.entry || card.entry.error !== undefined) return;
    drawWave(card);
    for (const { canvas, label } of card.canvases) drawTimeline(card, canvas, label);
  }

  // ------------------------------------------------------------------------------------------- downloads
  /** A CSV field as Python's csv module writes it (QUOTE_MINIMAL). */
  const csvField = (s) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  // a file name a TSV line cannot hold (writers.tsv_unsafe): a control character or a line/paragraph separator
  const tsvUnsafe = (s) => /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(s);

  /** The `zsa tag --format csv` table of the last run: file,label,score,probability (CRLF line ends). */
  function toCsv(results) {
    const rows = [["file", "label", "score", "probability"]];
    for (const entry of results) {
      if (entry.error !== undefined) continue;
      for (const r of entry.labels) rows.push([entry.file, r.label, r.score.toFixed(4), r.probability.toFixed(4)]);
    }
    return rows.map((row) => row.map(csvField).join(",") + "\r\n").join("");
  }

  /** The DCASE events TSV of `zsa tag --events`: without top-k / threshold, each file's best label's events. */
  function toEvents(results, selected) {
    let out = "filename\tonset\toffset\tevent_label\n";
    for (const entry of results) {
      if (entry.error !== undefined || tsvUnsafe(entry.file)) continue;
      for (const r of selected ? entry.labels : entry.labels.slice(0, 1)) {
        for (const ev of r.events || []) out += `${entry.file}\t${ev.onset.toFixed(3)}\t${ev.offset.toFixed(3)}\t${r.label}\n`;
      }
    }
    return out;
  }

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function setUpDownloads() {
    $("dl-json").addEventListener("click", () => state.run && download("zsa-results.json", "application/json", state.run.text));
    $("dl-csv").addEventListener("click", () => state.run && download("zsa-results.csv", "text/csv", toCsv(state.run.results)));
    $("dl-events").addEventListener("click", () => state.run
      && download("zsa-events.tsv", "text/tab-separated-values", toEvents(state.run.results, state.run.selected)));
  }

  // ------------------------------------------------------------------------------------------- start
  function setUpToken() {
    const input = $("token");
    input.value = load(sessionStorage, "zsa-token") || "";
    $("token-field").addEventListener("submit", (e) => { e.preventDefault(); run(); });
    input.addEventListener("input", () => store(sessionStorage, "zsa-token", input.value.trim() || null));
    input.addEventListener("change", () => { if (state.health?.auth) loadModels(); });
  }

  function start() {
    state.urls = [];
    state.observers = [];
    state.cards = [];
    setUpToken();
    setUpDropZone();
    setUpRecorder();
    setUpLabels();
    setUpExamples();
    setUpDownloads();
    $("run").addEventListener("click", run);
    document.addEventListener("keydown", (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); }
    });
    window.matchMedia?.("(prefers-color-scheme: dark)").addEventListener?.("change", () => {
      state.cards.forEach(redraw);
    });
    loadHealth();
    window.zsa = { parseLabels, toCsv, toEvents, encodeWav, state }; // for tests and the console
  }

  start();
})();

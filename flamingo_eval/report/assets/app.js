/* flamingo-eval report: a static page over data scripts (data/index.js at first, the rest on demand).
 *
 * Views, chosen by the URL hash:
 *   #/                         leaderboard (sortable) and score against shots per task
 *   #/cell/<cell>?t=&wrong=&min=&max=&q=&page=&size=    the sample browser of one cell and trial
 *   #/compare?a=&ta=&b=&tb=&w=&page=&size=              items whose scores differ between two runs
 * Data scripts call window.__chunk(name, payload); load(name) injects the script once and resolves with
 * its payload, so the page works from file:// without a server. No library, no network.
 */
"use strict";

(function () {
  const store = Object.create(null);
  const pending = Object.create(null);

  window.__chunk = function (name, payload) {
    store[name] = payload;
    const waiters = pending[name];
    delete pending[name];
    if (waiters) waiters.forEach((w) => w.resolve(payload));
  };

  function fail(name, why) {
    const waiters = pending[name] || [];
    delete pending[name];
    waiters.forEach((w) => w.reject(new Error(`${name}: ${why}`)));
  }

  function load(name) {
    if (name in store) return Promise.resolve(store[name]);
    return new Promise((resolve, reject) => {
      if (pending[name]) {
        pending[name].push({ resolve, reject });
        return;
      }
      pending[name] = [{ resolve, reject }];
      const s = document.createElement("script");
      s.src = name;
      s.onload = () => {
        s.remove();
        if (pending[name]) fail(name, "did not register its data");
      };
      s.onerror = () => {
        s.remove();
        fail(name, "could not be read");
      };
      document.head.appendChild(s);
    });
  }

  // ---- DOM helpers ---------------------------------------------------------------------------------

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k === "className" ? "class" : k, v === true ? "" : v);
    }
  }

  function append(e, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(kid.nodeType ? kid : String(kid));
    }
  }

  function fmt(v, digits = 2) {
    return v === null || v === undefined || Number.isNaN(v) ? "—" : Number(v).toFixed(digits);
  }

  function plural(n, word) {
    return `${n.toLocaleString("en")} ${word}${n === 1 ? "" : "s"}`;
  }

  // ---- state and routing ---------------------------------------------------------------------------

  let INDEX = null;
  let routeToken = 0;
  let firstViewMarked = false;
  const sortState = { key: null, dir: 1 };

  function cellTitle(c) {
    return `${c.model} · ${c.task} · ${c.shots}-shot · ${c.selection}`;
  }

  function href(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== "" && v !== false) q.set(k, v === true ? "1" : v);
    }
    const s = q.toString();
    return "#" + path + (s ? "?" + s : "");
  }

  function go(path, params, replace) {
    const h = href(path, params);
    if (replace) {
      history.replaceState(null, "", h);
      route();
    } else if (location.hash === h) {
      route();
    } else {
      location.hash = h;
    }
  }

  function route() {
    const raw = location.hash.replace(/^#/, "") || "/";
    const [path, query] = raw.split("?");
    const params = new URLSearchParams(query || "");
    const main = document.getElementById("main");
    const token = ++routeToken;
    main.dataset.ready = "0";
    main.replaceChildren();
    let view = "home";
    let done;
    if (path.startsWith("/cell/")) {
      view = "cell";
      done = viewCell(main, decodeURIComponent(path.slice(6)), params, token);
    } else if (path === "/compare") {
      view = "compare";
      done = viewCompare(main, params, token);
    } else {
      done = viewHome(main);
    }
    document.documentElement.dataset.view = view;
    document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === view));
    if (!firstViewMarked) {
      firstViewMarked = true;
      performance.mark("first-view");
    }
    Promise.resolve(done)
      .catch((err) => {
        if (token === routeToken) main.append(el("p", { class: "error", text: String(err.message || err) }));
      })
      .finally(() => {
        if (token === routeToken) main.dataset.ready = "1";
      });
  }

  function start() {
    INDEX = store["data/index.js"];
    const main = document.getElementById("main");
    if (!INDEX) {
      main.replaceChildren(el("p", { class: "error", text: "data/index.js is missing: write the report again." }));
      return;
    }
    const im = INDEX.images;
    document.getElementById("meta").textContent =
      `${plural(INDEX.rows.length, "result")} · ${plural(im.images, "image")}` +
      (im.missing ? ` (${im.missing} missing)` : "") + ` · written ${INDEX.generated}`;
    window.addEventListener("hashchange", route);
    route();
  }

  // ---- home: leaderboard and chart ---------------------------------------------------------------------

  const COLUMNS = [
    { key: "model", label: "model" },
    { key: "task", label: "task" },
    { key: "shots", label: "shots", num: true },
    { key: "selection", label: "selection" },
    { key: "metric", label: "metric" },
    {
      key: "mean", label: "mean ± std", num: true,
      show: (r) => fmt(r.mean) + (r.trials > 1 ? ` ± ${fmt(r.std)}` : ""),
    },
    { key: "trials", label: "trials", num: true },
    { key: "n", label: "n", num: true },
    {
      key: "published", label: "published", num: true,
      show: (r) => (r.published === null ? "—" : fmt(r.published, 1) +
        (r.published_std !== null ? ` ± ${fmt(r.published_std, 1)}` : "")),
      title: (r) => r.published_source || null,
    },
    {
      key: "delta", label: "Δ published", num: true,
      value: (r) => (r.published === null ? null : r.mean - r.published),
      show: (r) => (r.published === null ? "—" : (r.mean >= r.published ? "+" : "") + fmt(r.mean - r.published)),
      cls: (r) => (r.published === null ? null : r.mean >= r.published ? "delta-pos" : "delta-neg"),
    },
    { key: "flamingo_9b", label: "Flamingo-9B", num: true, show: (r) => fmt(r.flamingo_9b, 1) },
    // Other sources' figures for the same key (results/reference/: leaderboard's published_other), when any
    { key: "published_other", label: "other sources", optional: true, show: (r) => r.published_other || "—" },
    { key: "cell", label: "samples", sortable: false },
  ];

  function colValue(col, r) {
    return col.value ? col.value(r) : r[col.key];
  }

  function leaderboardTable() {
    const rows = INDEX.rows.slice();
    const columns = COLUMNS.filter((c) => !c.optional || rows.some((r) => r[c.key]));
    if (sortState.key) {
      const col = COLUMNS.find((c) => c.key === sortState.key);
      rows.sort((a, b) => {
        const x = colValue(col, a);
        const y = colValue(col, b);
        if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
        if (y === null || y === undefined) return -1;
        const c = col.num ? x - y : String(x).localeCompare(String(y));
        return c * sortState.dir;
      });
    }
    const head = el("tr", null, columns.map((col) => {
      const th = el("th", {
        class: col.num ? "num" : null, scope: "col", dataset: { key: col.key },
        "aria-sort": sortState.key === col.key ? (sortState.dir > 0 ? "ascending" : "descending") : null,
        title: col.sortable === false ? null : "sort",
      }, col.label);
      if (col.sortable !== false) {
        th.addEventListener("click", () => {
          sortState.dir = sortState.key === col.key ? -sortState.dir : 1;
          sortState.key = col.key;
          document.querySelector("table.leaderboard").replaceWith(leaderboardTable());
        });
      }
      return th;
    }));
    const body = rows.map((r) => el("tr", { dataset: { cell: r.cell } }, columns.map((col) => {
      if (col.key === "cell") {
        const c = INDEX.cells[r.cell];
        return el("td", null, c && c.trials.length
          ? el("a", { href: href("/cell/" + encodeURIComponent(r.cell), {}) }, "browse")
          : el("span", { class: "hint", text: "no samples" }));
      }
      return el("td", {
        class: [col.num ? "num" : "", col.cls ? col.cls(r) || "" : ""].join(" ").trim() || null,
        title: col.title ? col.title(r) : null,
      }, col.show ? col.show(r) : String(r[col.key]));
    })));
    return el("table", { class: "leaderboard" }, el("thead", null, head), el("tbody", null, body));
  }

  const PALETTE = ["#2456a6", "#d1495b", "#2e8b57", "#edae49", "#6a4c93", "#00798c", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22"];

  function niceRange(lo, hi) {
    if (lo === hi) {
      lo -= 1;
      hi += 1;
    }
    const span = hi - lo;
    const step = Math.pow(10, Math.floor(Math.log10(span / 4)));
    const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= 6) || step * 10;
    return { lo: Math.floor(lo / nice) * nice, hi: Math.ceil(hi / nice) * nice, step: nice };
  }

  function chart(task, rows) {
    const W = 420, H = 250, m = { l: 52, r: 14, t: 26, b: 38 };
    const shots = [...new Set(rows.map((r) => r.shots))].sort((a, b) => a - b);
    const groups = new Map();
    for (const r of rows) {
      const k = `${r.model} (${r.selection})`;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(r);
    }
    const values = [];
    rows.forEach((r) => {
      values.push(r.mean - (r.std || 0), r.mean + (r.std || 0));
      if (r.published !== null) values.push(r.published);
    });
    const yr = niceRange(Math.min(...values), Math.max(...values));
    const x = (s) => m.l + (shots.length === 1 ? (W - m.l - m.r) / 2
      : (shots.indexOf(s) * (W - m.l - m.r)) / (shots.length - 1));
    const y = (v) => m.t + ((yr.hi - v) / (yr.hi - yr.lo)) * (H - m.t - m.b);
    const g = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `${task}: score against shots` });
    g.append(svg("text", { x: m.l, y: 16, class: "title", text: task }));
    for (let v = yr.lo; v <= yr.hi + 1e-9; v += yr.step) {
      g.append(svg("line", { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: "grid" }));
      g.append(svg("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", text: +v.toFixed(6) }));
    }
    g.append(svg("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: "axis" }));
    g.append(svg("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "axis" }));
    shots.forEach((s) => g.append(svg("text", { x: x(s), y: H - m.b + 15, "text-anchor": "middle", text: s })));
    g.append(svg("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle", text: "shots" }));
    g.append(svg("text", { x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle",
      transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`, text: rows[0].metric }));
    const legend = el("ul", { class: "legend" });
    let i = 0;
    for (const [label, pts] of groups) {
      const color = PALETTE[i++ % PALETTE.length];
      pts.sort((a, b) => a.shots - b.shots);
      const series = svg("g", { class: "series", dataset: { label } });
      series.append(svg("polyline", { fill: "none", stroke: color, "stroke-width": 2,
        points: pts.map((p) => `${x(p.shots)},${y(p.mean)}`).join(" ") }));
      for (const p of pts) {
        if (p.std) {
          series.append(svg("line", { x1: x(p.shots), x2: x(p.shots), y1: y(p.mean - p.std), y2: y(p.mean + p.std),
            stroke: color }));
        }
        series.append(svg("circle", { cx: x(p.shots), cy: y(p.mean), r: 3.5, fill: color },
          svg("title", { text: `${label}, ${p.shots} shots: ${fmt(p.mean)}` + (p.trials > 1 ? ` ± ${fmt(p.std)}` : "") })));
      }
      const pub = pts.filter((p) => p.published !== null);
      if (pub.length) {
        series.append(svg("polyline", { fill: "none", stroke: color, "stroke-width": 1.5, "stroke-dasharray": "5 4",
          points: pub.map((p) => `${x(p.shots)},${y(p.published)}`).join(" ") }));
        pub.forEach((p) => series.append(svg("circle", { cx: x(p.shots), cy: y(p.published), r: 3, fill: "#fff",
          stroke: color }, svg("title", { text: `${label}, ${p.shots} shots, published: ${fmt(p.published, 1)}` }))));
      }
      g.append(series);
      legend.append(el("li", null, el("span", { class: "swatch", style: `background:${color}` }), label));
      if (pub.length) {
        legend.append(el("li", { style: `color:${color}` }, el("span", { class: "swatch dashed" }),
          el("span", { style: "color:var(--fg)", text: `${label}, published` })));
      }
    }
    return el("figure", { class: "chart", dataset: { task } }, g, legend);
  }

  function viewHome(main) {
    if (INDEX.notes.length) {
      main.append(el("ul", { class: "notes" }, INDEX.notes.map((n) => el("li", { text: n }))));
    }
    main.append(el("section", { id: "leaderboard" },
      el("h2", { text: "Leaderboard" }),
      el("p", { class: "hint", text: "One row per model, task, shots and selection (the newest result of each); " +
        "published numbers from results/reference/. Click a header to sort, \u201cbrowse\u201d to see the items." }),
      leaderboardTable()));
    const tasks = [...new Set(INDEX.rows.map((r) => r.task))].sort();
    main.append(el("section", { id: "chart" },
      el("h2", { text: "Score against shots" }),
      el("p", { class: "hint", text: "One line per model and selection (mean ± std over trials); dashed: published." }),
      el("div", { class: "charts" }, tasks.map((t) => chart(t, INDEX.rows.filter((r) => r.task === t)))),
      INDEX.plot ? pngDetails() : null));
  }

  // The leaderboard's PNG, read only when opened: the first view loads nothing it does not show.
  function pngDetails() {
    const details = el("details", { class: "png" }, el("summary", { text: "The same as a PNG (leaderboard --plot)" }));
    details.addEventListener("toggle", () => {
      if (details.open && !details.querySelector("img")) {
        details.append(el("img", { src: INDEX.plot, alt: "score against shots per task" }));
      }
    });
    return details;
  }

  // ---- one item ------------------------------------------------------------------------------------------

  // Where a key's thumbnail lies (flamingo_eval/report/images.py: default_url); entries say "img" otherwise.
  function imageUrl(entry, key) {
    if ("img" in entry) return entry.img;
    const path = /\.jpg$/i.test(key) ? key : key + ".jpg";
    return "thumbs/" + path.split("/").map(encodeURIComponent).join("/");
  }

  function thumb(entry, key, what) {
    if (entry.unknown) {
      return el("div", { class: "thumb placeholder", title: "the samples file does not record this prompt's images",
        text: "not recorded" });
    }
    if (key === null || key === undefined) {
      return el("div", { class: "thumb placeholder text-only", title: "0 shots: the demonstrations are text only",
        text: "text only" });
    }
    const url = imageUrl(entry, key);
    if (url === null) {
      return el("div", { class: "thumb placeholder missing", title: `image not found: ${key}`, text: "image missing" });
    }
    const img = el("img", { class: "thumb", src: url, alt: `${what} ${key}`, title: key });
    img.addEventListener("error", () => img.replaceWith(el("div", { class: "thumb placeholder missing",
      title: `image unreadable: ${key}`, text: "image unreadable" })));
    return img;
  }

  // A chunk's second and later images (VL-ICL's pairs), listed in "more" only where a chunk has several.
  function moreThumbs(entry, what) {
    return (entry.more || []).map((m) => thumb(m, m.key, what));
  }

  // Red: no credit; amber: VQA accuracy short of 100 (not every annotator agrees); green: the rest.
  function scoreClass(score, metric) {
    if (score === null || score === undefined) return "";
    if (score <= 0) return "wrong";
    if (metric === "vqa_accuracy" && score < 100 - 1e-9) return "partial";
    return "right";
  }

  function showValue(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "string") return v;
    if (typeof v === "number") return String(v);
    return JSON.stringify(v);
  }

  // A ranked task (HatefulMemes) logs each option's summed log-probability, answers P(last option), and is
  // scored against the label's index: shown by the options' names.
  function showOutput(cell, v) {
    if (cell.options && v && Array.isArray(v.logprobs)) {
      return v.logprobs.map((lp, i) => `${cell.options[i] ?? i} ${fmt(lp, 3)}`).join(" · ") + " (log-probabilities)";
    }
    return showValue(v);
  }

  function showAnswer(cell, v) {
    if (cell.options && typeof v === "number") return `P(${cell.options[cell.options.length - 1]}) = ${fmt(v, 4)}`;
    return showValue(v);
  }

  function references(refs, cell) {
    if (cell && cell.options && typeof refs === "number") return `${cell.options[refs] ?? refs} (label ${refs})`;
    if (Array.isArray(refs)) {
      const counts = new Map();
      refs.forEach((r) => counts.set(r, (counts.get(r) || 0) + 1));
      return el("ul", { class: "refs" }, [...counts].map(([r, n]) => el("li", { text: n > 1 ? `${r} (×${n})` : r })));
    }
    return showValue(refs);
  }

  // A demonstration number: >= 0 in the trial's table (demos.js), -1 - i for entry i of the chunk's.
  function demoOf(entry, ref) {
    return ref >= 0 ? entry.shared.demos[ref] : entry.chunk.demos[-1 - ref];
  }

  function promptText(entry, p) {
    const raw = p.prompts[entry.index];
    if (typeof raw === "string") return raw;
    const texts = entry.item.d.map((ref) => demoOf(entry, ref).text).concat([entry.item.q]);
    let out = p.glue[raw[0]];
    texts.forEach((t, i) => { out += t + p.glue[raw[i + 1]]; });
    return out;
  }

  // The demonstration (prompt order) whose answer the output repeats, or null (flamingo_eval.baselines).
  function copiedOf(item) {
    const c = item.extra ? item.extra.copied : null;
    return c === undefined ? null : c;
  }

  function card(cell, entry) {
    const item = entry.item;
    const copied = copiedOf(item);
    const demos = item.d.map((ref, j) => {
      const d = demoOf(entry, ref);
      const sim = item.sim ? item.sim[j] : null;
      return el("figure", { class: j === copied ? "demo copied" : "demo", dataset: { demoId: d.id } },
        thumb(d, d.key, "demonstration"), ...moreThumbs(d, "demonstration"),
        el("figcaption", null,
          el("span", { class: "demo-text", text: d.text }),
          sim !== null && sim !== undefined ? el("span", { class: "sim", text: `similarity ${fmt(sim, 3)}` }) : null,
          el("span", { class: "demo-id", text: `#${d.id}` })));
    });
    const query = el("figure", { class: "query" }, thumb(item, item.key, "query"), ...moreThumbs(item, "query"),
      el("figcaption", null, el("span", { class: "query-text", text: item.q })));
    const cls = scoreClass(item.score, cell.metric);
    const pre = el("pre", { class: "prompt", hidden: true });
    const button = el("button", { type: "button", class: "show-prompt", text: "Show prompt" });
    button.addEventListener("click", () => {
      if (!pre.hidden) {
        pre.hidden = true;
        button.textContent = "Show prompt";
        return;
      }
      load(entry.prompt).then((p) => {
        pre.textContent = promptText(entry, p);
        pre.hidden = false;
        button.textContent = "Hide prompt";
      }, (err) => {
        pre.textContent = String(err.message);
        pre.hidden = false;
      });
    });
    return el("article", { class: `card ${cls}`, dataset: { id: item.id } },
      el("header", null,
        el("span", { class: "item-id", text: item.id }),
        el("span", { class: `badge ${cls}`, text: item.skip ? "skipped" : `score ${fmt(item.score)}` }),
        copied !== null ? el("span", { class: "badge copy", text: `copies demonstration ${copied + 1}`,
          title: "the answer equals this demonstration's answer after the task's normalisation" }) : null,
        el("span", { class: "hint", text: `${plural(item.d.length, "demonstration")} in prompt order, then the query` })),
      el("div", { class: "body" },
        el("div", { class: "prompt-row" }, demos, query),
        el("div", { class: "result" },
          el("dl", { class: "outcome" },
            el("dt", { text: "Output" }), el("dd", { class: "output", text: showOutput(cell, item.out) }),
            el("dt", { text: "Answer" }), el("dd", { class: "answer", text: showAnswer(cell, item.ans) }),
            el("dt", { text: "References" }), el("dd", { class: "refs" }, references(item.refs, cell)),
            el("dt", { text: "Score" }),
            el("dd", { class: "score", text: item.skip ? `skipped: ${item.skip}` : fmt(item.score) })),
          button)),
      pre);
  }

  // Items by position in a trial, loading the chunks they live in (in parallel, each once).
  async function itemsAt(trial, positions) {
    const chunk = INDEX.chunk;
    const names = [...new Set(positions.map((p) => `${trial.dir}/i${Math.floor(p / chunk)}.js`))];
    const [shared, ...loaded] = await Promise.all([trial.demos ? load(trial.demos) : null, ...names.map(load)]);
    const byName = Object.fromEntries(names.map((n, i) => [n, loaded[i]]));
    return positions.map((p) => {
      const k = Math.floor(p / chunk);
      const c = byName[`${trial.dir}/i${k}.js`];
      return { shared, chunk: c, item: c.items[p % chunk], prompt: `${trial.dir}/p${k}.js`, index: p % chunk };
    });
  }

  function pager(total, page, size, goto) {
    const pages = Math.max(1, Math.ceil(total / size));
    return el("div", { class: "pager" },
      el("button", { type: "button", class: "prev", disabled: page <= 0, onclick: () => goto(page - 1), text: "‹ previous" }),
      el("span", { class: "status", text: `page ${page + 1} of ${pages}` }),
      el("button", { type: "button", class: "next", disabled: page >= pages - 1, onclick: () => goto(page + 1),
        text: "next ›" }));
  }

  const SIZES = [10, 20, 50, 100];

  function pageParams(params) {
    const size = SIZES.includes(+params.get("size")) ? +params.get("size") : 20;
    return { page: Math.max(0, parseInt(params.get("page") || "0", 10) || 0), size };
  }

  // ---- the sample browser ------------------------------------------------------------------------------

  function sameTaskShots(cell) {
    return Object.entries(INDEX.cells).filter(([, c]) => c.task === cell.task && c.shots === cell.shots &&
      c.trials.length);
  }

  // Model-free baselines from the same demonstrations, beside the score (flamingo_eval.baselines).
  function baselinesLine(cell) {
    const b = cell.baselines;
    return el("p", { class: "baselines" },
      el("span", { class: "label", text: "baselines " }),
      `majority ${fmt(b.majority)} · last ${fmt(b.last)} · outputs copying a demonstration ` +
      `${fmt(b.copy_rate, 1)}% (the last ${fmt(b.copy_last_rate, 1)}%)`);
  }

  // The plain run beside each control run of the same cell: score, change, items that changed.
  function controlsPanel(cid, cell) {
    const rows = cell.controls;
    const plain = rows[0];
    return el("section", { class: "controls-panel" },
      el("h3", { text: "controls" }),
      el("table", null,
        el("thead", null, el("tr", null, ["selection", cell.metric, "change", "answers changed", "scores changed", ""]
          .map((h) => el("th", { text: h })))),
        el("tbody", null, rows.map((r, i) => el("tr", { class: r.cell === cid ? "current" : null },
          el("td", null, el("a", { href: href("/cell/" + encodeURIComponent(r.cell), {}) }, r.selection)),
          el("td", { class: "num", text: fmt(r.score) }),
          el("td", { class: i === 0 ? "num" : `num ${r.change >= 0 ? "delta-pos" : "delta-neg"}`,
            text: i === 0 ? "—" : (r.change >= 0 ? "+" : "") + fmt(r.change) }),
          el("td", { class: "num", text: i === 0 ? "—" : `${r.changed_answers} of ${r.compared}` }),
          el("td", { class: "num", text: i === 0 ? "—" : `${r.changed_scores} of ${r.compared}` }),
          el("td", null, i === 0 ? null : el("a", { href: href("/compare", { a: plain.cell, b: r.cell }) },
            "compare items")))))));
  }

  async function viewCell(main, cid, params, token) {
    const cell = INDEX.cells[cid];
    if (!cell) {
      main.append(el("p", { class: "error", text: `no cell ${cid} in this report` }));
      return;
    }
    main.append(el("h2", { text: cellTitle(cell) }),
      el("p", { class: "hint" }, `${cell.metric} ${fmt(cell.mean)}` + (cell.trials.length > 1 ? ` ± ${fmt(cell.std)}` : "") +
        ` over ${plural(cell.n, "item")} · `, el("a", { href: "#/" }, "back to the leaderboard")));
    if (cell.baselines) main.append(baselinesLine(cell));
    if (cell.controls) main.append(controlsPanel(cid, cell));
    if (!cell.trials.length) {
      main.append(el("p", { class: "error", text: "No samples file was found beside this result." }));
      return;
    }
    const t = Math.min(cell.trials.length - 1, Math.max(0, parseInt(params.get("t") || "0", 10) || 0));
    const trial = cell.trials[t];
    const state = {
      t, wrong: params.get("wrong") === "1", min: params.get("min") || "", max: params.get("max") || "",
      q: params.get("q") || "", ...pageParams(params),
    };
    const path = "/cell/" + encodeURIComponent(cid);
    const goto = (changes, replace) => go(path, { ...state, ...changes }, replace);

    const others = sameTaskShots(cell).filter(([id]) => id !== cid || cell.trials.length > 1);
    const form = el("form", { class: "controls" },
      el("label", null, "trial ", el("select", { name: "t" }, cell.trials.map((tr, i) =>
        el("option", { value: i, selected: i === t },
          `seed ${tr.seed}` + (tr.score !== null ? ` (${fmt(tr.score)})` : ""))))),
      el("label", null, el("input", { type: "checkbox", name: "wrong", checked: state.wrong }), "wrong only (score 0)"),
      el("label", null, "score from ", el("input", { type: "number", name: "min", step: "any", value: state.min }),
        " to ", el("input", { type: "number", name: "max", step: "any", value: state.max })),
      el("label", null, "search ", el("input", { type: "search", name: "q", value: state.q,
        placeholder: "id, question, output or answer" })),
      el("label", null, "per page ", el("select", { name: "size" }, SIZES.map((s) =>
        el("option", { value: s, selected: s === state.size }, s)))),
      el("button", { type: "submit", text: "apply" }),
      others.length ? el("a", { class: "compare-link", href: href("/compare", { a: cid, ta: t }) }, "compare with another run…")
        : null);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      goto({ t: +f.get("t"), wrong: f.get("wrong") === "on", min: f.get("min"), max: f.get("max"),
        q: f.get("q").trim(), size: +f.get("size"), page: 0 });
    });
    form.querySelectorAll("select, input[type=checkbox]").forEach((c) =>
      c.addEventListener("change", () => form.requestSubmit()));
    main.append(form);

    const status = el("p", { class: "status", text: "loading items…" });
    main.append(status);
    const summary = await load(`${trial.dir}/summary.js`);
    const search = state.q ? await load(`${trial.dir}/search.js`) : null;
    if (token !== routeToken) return;

    const lo = state.min === "" ? -Infinity : +state.min;
    const hi = state.max === "" ? Infinity : +state.max;
    const needle = state.q.toLowerCase();
    const matches = [];
    for (let i = 0; i < summary.ids.length; i++) {
      const s = summary.scores[i];
      if (state.wrong && !(s !== null && s <= 0)) continue;
      if ((state.min !== "" || state.max !== "") && (s === null || s < lo || s > hi)) continue;
      if (needle && !search.lines[i].includes(needle)) continue;
      matches.push(i);
    }
    const page = Math.min(state.page, Math.max(0, Math.ceil(matches.length / state.size) - 1));
    const shown = matches.slice(page * state.size, (page + 1) * state.size);
    status.textContent = matches.length
      ? `${(page * state.size + 1).toLocaleString("en")}–${(page * state.size + shown.length).toLocaleString("en")} ` +
        `of ${plural(matches.length, "matching item")} (${summary.ids.length.toLocaleString("en")} in this trial, ` +
        `${trial.wrong.toLocaleString("en")} with score 0)`
      : `no items match (${summary.ids.length.toLocaleString("en")} in this trial)`;
    const nav = () => pager(matches.length, page, state.size, (p) => goto({ page: p }));
    main.append(nav());
    const list = el("div", { class: "cards" });
    main.append(list);
    const entries = await itemsAt(trial, shown);
    if (token !== routeToken) return;
    entries.forEach((e) => list.append(card(cell, e)));
    if (shown.length > 5) main.append(nav());
  }

  // ---- comparison ------------------------------------------------------------------------------------------

  async function viewCompare(main, params, token) {
    main.append(el("h2", { text: "Compare two runs of the same task and shots" }));
    const withSamples = Object.entries(INDEX.cells).filter(([, c]) => c.trials.length);
    if (!withSamples.length) {
      main.append(el("p", { class: "error", text: "No result in this report has a samples file." }));
      return;
    }
    let a = params.get("a");
    if (!INDEX.cells[a] || !INDEX.cells[a].trials.length) {
      a = (withSamples.find(([, c]) => sameTaskShots(c).length > 1) || withSamples[0])[0];
    }
    const A = INDEX.cells[a];
    const partners = sameTaskShots(A);
    let b = params.get("b");
    if (!partners.some(([id]) => id === b)) {
      const other = partners.find(([id]) => id !== a);
      b = other ? other[0] : a;
    }
    const B = INDEX.cells[b];
    const clampT = (c, v, dflt) => Math.min(c.trials.length - 1, Math.max(0, v === null ? dflt : parseInt(v, 10) || 0));
    const ta = clampT(A, params.get("ta"), 0);
    const tb = clampT(B, params.get("tb"), a === b && B.trials.length > 1 ? 1 : 0);
    const w = ["a", "b"].includes(params.get("w")) ? params.get("w") : "";
    const state = { a, ta, b, tb, w, ...pageParams(params) };
    const goto = (changes) => go("/compare", { ...state, ...changes });

    const trialOptions = (c, sel) => c.trials.map((tr, i) => el("option", { value: i, selected: i === sel },
      `seed ${tr.seed}` + (tr.score !== null ? ` (${fmt(tr.score)})` : "")));
    const form = el("form", { class: "controls" },
      el("label", null, "A ", el("select", { name: "a" }, withSamples.map(([id, c]) =>
        el("option", { value: id, selected: id === a }, cellTitle(c))))),
      el("select", { name: "ta" }, trialOptions(A, ta)),
      el("label", null, "B ", el("select", { name: "b" }, partners.map(([id, c]) =>
        el("option", { value: id, selected: id === b }, cellTitle(c))))),
      el("select", { name: "tb" }, trialOptions(B, tb)),
      el("label", null, "show ", el("select", { name: "w" },
        el("option", { value: "", selected: w === "" }, "all differences"),
        el("option", { value: "a", selected: w === "a" }, "A scores higher"),
        el("option", { value: "b", selected: w === "b" }, "B scores higher"))),
      el("label", null, "per page ", el("select", { name: "size" }, SIZES.map((s) =>
        el("option", { value: s, selected: s === state.size }, s)))));
    form.addEventListener("change", (ev) => {
      const f = new FormData(form);
      const changed = ev.target.name;
      const next = { a: f.get("a"), ta: +f.get("ta"), b: f.get("b"), tb: +f.get("tb"), w: f.get("w"),
        size: +f.get("size"), page: 0 };
      if (changed === "a") {
        next.ta = 0;
        next.b = null;
        next.tb = null;
      }
      if (changed === "b") next.tb = null;
      goto(next);
    });
    main.append(form);
    if (a === b && A.trials.length < 2) {
      main.append(el("p", { class: "status", text: `No other run of ${A.task} at ${A.shots} shots in this report: ` +
        "give report two models' runs, or random and RICES." }));
      return;
    }
    const status = el("p", { class: "status", text: "loading…" });
    main.append(status);
    const trA = A.trials[ta];
    const trB = B.trials[tb];
    const [sa, sb] = await Promise.all([load(`${trA.dir}/summary.js`), load(`${trB.dir}/summary.js`)]);
    if (token !== routeToken) return;
    const posB = new Map(sb.ids.map((id, i) => [id, i]));
    const diffs = [];
    let shared = 0;
    let aHigher = 0;
    let bHigher = 0;
    sa.ids.forEach((id, i) => {
      const j = posB.get(id);
      if (j === undefined) return;
      shared++;
      const x = sa.scores[i];
      const y = sb.scores[j];
      if (x === y) return;
      const d = (y === null ? 0 : y) - (x === null ? 0 : x);
      if (d > 0) bHigher++;
      else if (d < 0) aHigher++;
      if ((w === "a" && !(d < 0)) || (w === "b" && !(d > 0))) return;
      diffs.push({ i, j, d });
    });
    diffs.sort((p, q) => Math.abs(q.d) - Math.abs(p.d) || p.i - q.i);
    const page = Math.min(state.page, Math.max(0, Math.ceil(diffs.length / state.size) - 1));
    const shown = diffs.slice(page * state.size, (page + 1) * state.size);
    status.textContent = `${plural(aHigher + bHigher, "item")} of ${shared.toLocaleString("en")} in both score ` +
      `differently: A higher on ${aHigher.toLocaleString("en")}, B higher on ${bHigher.toLocaleString("en")}` +
      (shown.length ? "; largest differences first" : "");
    const nav = () => pager(diffs.length, page, state.size, (p) => goto({ page: p }));
    main.append(nav());
    const list = el("div", { class: "pairs" });
    main.append(list);
    const [ea, eb] = await Promise.all([itemsAt(trA, shown.map((s) => s.i)), itemsAt(trB, shown.map((s) => s.j))]);
    if (token !== routeToken) return;
    shown.forEach((s, k) => {
      list.append(el("div", { class: "pair", dataset: { id: sa.ids[s.i] } },
        el("div", { class: "delta", text: `${sa.ids[s.i]}: B − A = ${s.d > 0 ? "+" : ""}${fmt(s.d)}` }),
        el("div", { class: "side a" }, el("div", { class: "hint", text: "A · " + cellTitle(A) + ` · seed ${trA.seed}` }),
          card(A, ea[k])),
        el("div", { class: "side b" }, el("div", { class: "hint", text: "B · " + cellTitle(B) + ` · seed ${trB.seed}` }),
          card(B, eb[k]))));
    });
    if (shown.length > 3) main.append(nav());
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

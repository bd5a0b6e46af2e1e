// graphnn's graph explorer: one page, no network. The data (JSON in #graphnn-data) holds every stage; this draws
// the visible graph (modules collapsed into boxes) with a layered layout, and exposes window.graphnn for scripts.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("graphnn-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const BUDGET = 80; // modules open at start while the drawing stays below this many boxes
  const ROW = 74, GAP = 18, BOX_H = 40;
  const $ = (id) => document.getElementById(id);
  const svg = $("canvas"), view = $("viewport");
  const prepared = {};
  const expandedBy = {}; // stage -> Set of expanded paths
  const xCache = {}; // stage -> Map unit id -> x centre of its last layout
  let S = null; // the current stage, prepared
  let expanded = null;
  let units = null, unitEdges = null, layout = null;
  let selected = null; // node id or "m:path"
  let selOrigins = null; // traced op ids of the selection: what a stage switch looks for
  let related = new Set(), matches = new Set();
  let overlay = "none";
  let tf = { x: 20, y: 20, k: 1 };

  // -- the data of a stage ----------------------------------------------------------------------------------------
  function prepare(name) {
    if (prepared[name]) return prepared[name];
    const st = D.stages[name];
    const byId = new Map(), index = new Map(), byOrigin = new Map(), byGrad = new Map();
    const modules = new Set(), children = new Map();
    st.nodes.forEach((n, i) => {
      byId.set(n.id, n);
      index.set(n.id, i);
      const os = n.o === undefined ? [] : Array.isArray(n.o) ? n.o : [n.o];
      os.forEach((o) => push(byOrigin, o, n.id));
      if (n.g !== undefined) push(byGrad, n.g, n.id);
      const parts = n.path ? n.path.split(".") : [];
      for (let l = 1; l <= parts.length; l++) {
        const p = parts.slice(0, l).join(".");
        if (!modules.has(p)) {
          modules.add(p);
          push(children, l > 1 ? parts.slice(0, l - 1).join(".") : "", p);
        }
      }
    });
    const succ = new Map(), pred = new Map();
    st.edges.forEach(([a, b]) => {
      push(succ, a, b);
      push(pred, b, a);
    });
    prepared[name] = { name, st, byId, index, byOrigin, byGrad, modules, children, succ, pred };
    return prepared[name];
  }

  function push(map, k, v) {
    const l = map.get(k);
    if (l) l.push(v);
    else map.set(k, [v]);
  }

  function rep(n) {
    if (!n.path) return n.id;
    const parts = n.path.split(".");
    for (let l = 1; l <= parts.length; l++) {
      const p = parts.slice(0, l).join(".");
      if (!expanded.has(p)) return "m:" + p;
    }
    return n.id;
  }

  function originsOf(n) {
    return n.o === undefined ? [] : Array.isArray(n.o) ? n.o : [n.o];
  }

  // -- the visible graph --------------------------------------------------------------------------------------------
  function computeUnits() {
    units = new Map();
    S.st.nodes.forEach((n, i) => {
      const u = rep(n);
      let e = units.get(u);
      if (!e) {
        e = { id: u, module: u.startsWith("m:"), path: u.startsWith("m:") ? u.slice(2) : n.path, members: [], order: i };
        units.set(u, e);
      }
      e.members.push(n.id);
    });
    const seen = new Set();
    unitEdges = [];
    S.st.edges.forEach(([a, b]) => {
      const ua = rep(S.byId.get(a)), ub = rep(S.byId.get(b));
      const key = ua + "\u0000" + ub;
      if (ua !== ub && !seen.has(key)) {
        seen.add(key);
        unitEdges.push([ua, ub]);
      }
    });
  }

  function countVisible(exp) {
    const saved = expanded;
    expanded = exp;
    const s = new Set(S.st.nodes.map(rep));
    expanded = saved;
    return s.size;
  }

  function defaultExpansion() {
    const exp = new Set();
    if (D.depth !== null && D.depth !== undefined) {
      // `graphnn viz --depth N`: the model and the modules less than N levels below it are open
      S.modules.forEach((p) => {
        if (p.split(".").length <= D.depth) exp.add(p);
      });
      return exp;
    }
    // level by level, all siblings or none: the top-level boxes open, then each level while the drawing stays small
    let frontier = (S.children.get("") || []).slice();
    let first = true;
    while (frontier.length) {
      const open = frontier.filter((p) => (S.children.get(p) || []).length); // modules without submodules stay boxes
      if (!open.length) break;
      const trial = new Set(exp);
      open.forEach((p) => trial.add(p));
      if (!first && countVisible(trial) > BUDGET) break;
      open.forEach((p) => exp.add(p));
      frontier = open.flatMap((p) => S.children.get(p));
      first = false;
    }
    return exp;
  }

  // -- labels and sizes -----------------------------------------------------------------------------------------------
  function lines(u) {
    if (u.module) {
      const last = u.path.split(".").pop();
      const typ = D.modules[u.path];
      const ms = u.members.map((m) => S.byId.get(m));
      const ops = ms.filter((n) => n.op !== "kernel" && n.o !== undefined).length;
      const kernels = ms.filter((n) => n.op === "kernel").length;
      const params = ms.filter((n) => n.op === "param").length;
      const what = kernels ? `${kernels} kernels` : ops ? `${ops} ops` : params ? `${params} parameters` : `${ms.length} nodes`;
      return [last + (typ ? ": " + typ : ""), what + " · " + u.path];
    }
    const n = S.byId.get(u.id);
    if (n.op === "kernel") return [n.name + " · " + n.root, n.pattern + " → " + typeOf(n.outs[0])];
    if (n.id.startsWith("in")) return [n.name, typeOf(n.outs[0])];
    if (n.id.startsWith("out")) return [n.name, n.ins[0]];
    return [n.op, n.outs.map(typeOf).join(", ")];
  }

  function typeOf(s) {
    const i = s ? s.indexOf(": ") : -1;
    return i < 0 ? s || "" : s.slice(i + 2);
  }

  function width(ls) {
    return Math.max(60, Math.min(320, 12 + 6.6 * Math.max(...ls.map((l) => l.length))));
  }

  // -- layout: longest-path layers, barycentric order, positions cached per stage -----------------------------------
  function computeLayout() {
    const list = Array.from(units.values()).sort((a, b) => a.order - b.order);
    const rank = new Map(list.map((u, i) => [u.id, i]));
    const preds = new Map(), succs = new Map();
    unitEdges.forEach(([a, b]) => {
      if (rank.get(a) < rank.get(b)) {
        push(preds, b, a);
        push(succs, a, b);
      }
    });
    const layer = new Map();
    list.forEach((u) => {
      let l = 0;
      (preds.get(u.id) || []).forEach((p) => (l = Math.max(l, layer.get(p) + 1)));
      layer.set(u.id, l);
    });
    list.forEach((u) => {
      // sources (inputs, parameters) sit just above their first use
      if (!(preds.get(u.id) || []).length && (succs.get(u.id) || []).length) {
        const m = Math.min(...succs.get(u.id).map((s) => layer.get(s)));
        layer.set(u.id, Math.max(0, m - 1));
      }
    });
    const rows = [];
    list.forEach((u) => {
      const l = layer.get(u.id);
      (rows[l] = rows[l] || []).push(u);
      u.lines = lines(u);
      u.w = width(u.lines);
    });
    const cache = xCache[S.name] || (xCache[S.name] = new Map());
    const x = new Map();
    const start = (u) => {
      if (cache.has(u.id)) return cache.get(u.id);
      const parts = u.path ? u.path.split(".") : [];
      for (let l = parts.length; l >= 1; l--) {
        const k = "m:" + parts.slice(0, l).join(".");
        if (cache.has(k)) return cache.get(k) + u.order * 1e-3;
      }
      return null;
    };
    rows.forEach((row) => {
      if (!row) return;
      const keys = new Map(row.map((u, i) => [u.id, start(u)]));
      row.sort((a, b) => {
        const ka = keys.get(a.id), kb = keys.get(b.id);
        if (ka !== null && kb !== null && ka !== kb) return ka - kb;
        return a.order - b.order;
      });
      pack(row, x, (u) => keys.get(u.id));
    });
    const centre = (ids) => (ids && ids.length ? ids.reduce((s, i) => s + x.get(i), 0) / ids.length : null);
    for (let sweep = 0; sweep < 2; sweep++) {
      rows.forEach((row) => {
        if (!row) return;
        const want = new Map(row.map((u) => [u.id, centre(preds.get(u.id)) ?? centre(succs.get(u.id)) ?? x.get(u.id)]));
        row.sort((a, b) => want.get(a.id) - want.get(b.id) || a.order - b.order);
        pack(row, x, (u) => want.get(u.id));
      });
    }
    const pos = new Map();
    rows.forEach((row, l) => (row || []).forEach((u) => pos.set(u.id, { x: x.get(u.id), y: l * ROW, w: u.w, h: BOX_H })));
    pos.forEach((p, id) => cache.set(id, p.x));
    layout = pos;
  }

  function pack(row, x, want) {
    let right = -Infinity;
    row.forEach((u) => {
      const w = want(u);
      let c = w === null || w === undefined ? right + GAP + u.w / 2 : w;
      if (!isFinite(c)) c = u.w / 2;
      c = Math.max(c, right + GAP + u.w / 2);
      x.set(u.id, c);
      right = c + u.w / 2;
    });
    // centre the row on what it wanted, keeping the order and the gaps
    let shift = 0, n = 0;
    row.forEach((u) => {
      const w = want(u);
      if (w !== null && w !== undefined && isFinite(w)) {
        shift += w - x.get(u.id);
        n++;
      }
    });
    if (n) row.forEach((u) => x.set(u.id, x.get(u.id) + shift / n / 2));
  }

  // -- drawing --------------------------------------------------------------------------------------------------------
  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function heat(share) {
    const t = Math.max(0, Math.min(1, share));
    const r = 255, g = Math.round(247 - 180 * t), b = Math.round(236 - 200 * t);
    return `rgb(${r},${g},${b})`;
  }

  function unitValue(u, key) {
    return u.members.reduce((s, m) => s + (S.byId.get(m)[key] || 0), 0);
  }

  function fill(u) {
    if (overlay === "time" || overlay === "flops") {
      const key = overlay === "time" ? "share" : "flops";
      if (overlay === "flops") {
        const total = S.st.nodes.reduce((s, n) => s + (n.flops || 0), 0) || 1;
        return heat(Math.sqrt(unitValue(u, key) / total));
      }
      return heat(Math.sqrt(unitValue(u, key)));
    }
    return null;
  }

  function classes(u) {
    const c = ["unit"];
    if (u.module) c.push("module");
    else {
      const n = S.byId.get(u.id);
      c.push(n.id.startsWith("in") ? "kind-" + n.op : n.id.startsWith("out") ? "output" : "ph-" + (n.ph || "forward"));
    }
    if (selected === u.id || (selected && u.members.includes(selected))) c.push("selected");
    if (u.members.some((m) => related.has(m))) c.push("related");
    if (u.members.some((m) => matches.has(m))) c.push("match");
    return c.join(" ");
  }

  function draw() {
    view.textContent = "";
    const gClusters = el("g", { class: "clusters" }, view);
    const gEdges = el("g", { class: "edges" }, view);
    const gNodes = el("g", { class: "nodes" }, view);
    // expanded modules: a faint box around their visible members, its title collapses it
    expanded.forEach((p) => {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      units.forEach((u) => {
        if (u.path === p || (u.path && u.path.startsWith(p + "."))) {
          const q = layout.get(u.id);
          x0 = Math.min(x0, q.x - q.w / 2);
          x1 = Math.max(x1, q.x + q.w / 2);
          y0 = Math.min(y0, q.y);
          y1 = Math.max(y1, q.y + q.h);
        }
      });
      if (!isFinite(x0)) return;
      const depth = p.split(".").length;
      const pad = 12 - Math.min(depth, 4);
      el("rect", { x: x0 - pad, y: y0 - pad - 14, width: x1 - x0 + 2 * pad, height: y1 - y0 + 2 * pad + 14, rx: 8, class: "cluster" }, gClusters);
      const t = el("text", { x: x0 - pad + 6, y: y0 - pad - 3, class: "cluster-title" }, gClusters);
      t.textContent = "▾ " + p + (D.modules[p] ? ": " + D.modules[p] : "");
      t.addEventListener("click", (ev) => {
        ev.stopPropagation();
        toggle(p);
      });
    });
    unitEdges.forEach(([a, b]) => {
      const p = layout.get(a), q = layout.get(b);
      const x1 = p.x, y1 = p.y + p.h, x2 = q.x, y2 = q.y;
      const back = y2 <= y1;
      const dy = back ? 60 : Math.max(20, (y2 - y1) / 2);
      const d = `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2}`;
      const hot = a === selected || b === selected;
      el("path", { d, class: "edge" + (back ? " back" : "") + (hot ? " hot" : "") }, gEdges);
    });
    units.forEach((u) => {
      const q = layout.get(u.id);
      const g = el("g", { class: classes(u), transform: `translate(${q.x - q.w / 2},${q.y})`, "data-id": u.id }, gNodes);
      const r = el("rect", { width: q.w, height: q.h, rx: u.module ? 3 : 7 }, g);
      const f = fill(u);
      if (f) r.setAttribute("style", "fill:" + f);
      if (u.module) el("rect", { x: 3, y: 3, width: q.w - 6, height: q.h - 6, rx: 2, class: "inner" }, g);
      const t1 = el("text", { x: q.w / 2, y: 16, class: "l1" }, g);
      t1.textContent = clip(u.lines[0], q.w);
      const t2 = el("text", { x: q.w / 2, y: 31, class: "l2" }, g);
      t2.textContent = clip(u.lines[1], q.w);
      g.addEventListener("click", (ev) => {
        ev.stopPropagation();
        if (u.module) toggle(u.path);
        select(u.id, false);
      });
    });
    drawMemory();
  }

  function clip(s, w) {
    const n = Math.floor((w - 8) / 6.2);
    return s.length > n ? s.slice(0, Math.max(1, n - 1)) + "…" : s;
  }

  function applyTransform() {
    view.setAttribute("transform", `translate(${tf.x},${tf.y}) scale(${tf.k})`);
  }

  function fit() {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    layout.forEach((q) => {
      x0 = Math.min(x0, q.x - q.w / 2);
      x1 = Math.max(x1, q.x + q.w / 2);
      y0 = Math.min(y0, q.y);
      y1 = Math.max(y1, q.y + q.h);
    });
    const r = svg.getBoundingClientRect();
    const k = Math.min(1.2, (r.width - 40) / Math.max(1, x1 - x0), (r.height - 40) / Math.max(1, y1 - y0));
    tf = { k: Math.max(0.05, k), x: 0, y: 0 };
    tf.x = (r.width - (x1 - x0) * tf.k) / 2 - x0 * tf.k;
    tf.y = 20 - y0 * tf.k + Math.max(0, (r.height - 40 - (y1 - y0) * tf.k) / 2);
    applyTransform();
  }

  function refresh(anchor) {
    // anchor: [unit id before, screen point] keeps the toggled module where it was on screen
    computeUnits();
    computeLayout();
    if (anchor) {
      const q = placeOf(anchor[0]);
      if (q) {
        tf.x = anchor[1].x - q.x * tf.k;
        tf.y = anchor[1].y - q.y * tf.k;
        applyTransform();
      }
    }
    draw();
  }

  function placeOf(path) {
    // the centre-top of a module: its box, or the first of its visible members
    const box = layout.get("m:" + path);
    if (box) return box;
    let best = null;
    units.forEach((u) => {
      if (u.path === path || (u.path && u.path.startsWith(path + "."))) {
        const q = layout.get(u.id);
        if (!best || q.y < best.y || (q.y === best.y && q.x < best.x)) best = q;
      }
    });
    return best;
  }

  function screenOf(path) {
    const q = placeOf(path);
    return q ? { x: tf.x + q.x * tf.k, y: tf.y + q.y * tf.k } : null;
  }

  // -- modules ------------------------------------------------------------------------------------------------------------
  function expand(path) {
    if (!S.modules.has(path)) return false;
    const at = screenOf(path);
    const parts = path.split(".");
    for (let l = 1; l <= parts.length; l++) expanded.add(parts.slice(0, l).join("."));
    refresh(at ? [path, at] : null);
    return true;
  }

  function collapse(path) {
    if (!S.modules.has(path)) return false;
    const at = screenOf(path);
    expanded.forEach((p) => {
      if (p === path || p.startsWith(path + ".")) expanded.delete(p);
    });
    refresh(at ? [path, at] : null);
    return true;
  }

  function toggle(path) {
    return expanded.has(path) ? collapse(path) : expand(path);
  }

  function reveal(id) {
    const n = S.byId.get(id);
    if (!n || !n.path) return;
    const parts = n.path.split(".");
    let changed = false;
    for (let l = 1; l <= parts.length; l++) {
      const p = parts.slice(0, l).join(".");
      if (!expanded.has(p)) {
        expanded.add(p);
        changed = true;
      }
    }
    if (changed) refresh(null);
  }

  // -- selection and the side panel --------------------------------------------------------------------------------
  function kernelsOf(n) {
    // the kernels of the fused stage that compute op n (through the traced op it descends from)
    const fused = Object.keys(D.stages).find((k) => D.stages[k].memory);
    if (!fused || n.op === "kernel") return [];
    const F = prepare(fused);
    const ks = new Set();
    originsOf(n).forEach((o) => (F.byOrigin.get(o) || []).forEach((k) => ks.add(k)));
    return Array.from(ks).map((k) => {
      const kn = F.byId.get(k);
      return { stage: fused, id: k, text: `${kn.name} (${kn.pattern})` };
    });
  }

  function link(stage, id) {
    const n = prepare(stage).byId.get(id);
    const what = n.op === "kernel" ? `${n.name} (${n.pattern})` : n.name ? `${n.name} (${n.op})` : n.op;
    const typ = n.outs && n.outs.length ? " " + typeOf(n.outs[0]) : "";
    return { stage, id, text: what + typ + (n.path ? ` · ${n.path}` : "") };
  }

  function gradientLinks(n) {
    // forward op -> its gradient ops; gradient op -> the forward op (in this stage, else in the backward stage)
    const out = { grads: [], forward: [] };
    const where = [S.name].concat(Object.keys(D.stages).filter((k) => k !== S.name && !D.stages[k].memory));
    for (const name of where) {
      const P = prepare(name);
      if (!out.grads.length && n.ph === "forward")
        originsOf(n).forEach((o) => (P.byGrad.get(o) || []).forEach((g) => out.grads.push(link(name, g))));
      if (!out.forward.length && n.g !== undefined) (P.byOrigin.get(n.g) || []).forEach((f) => out.forward.push(link(name, f)));
    }
    return out;
  }

  function details(id) {
    if (id.startsWith("m:")) {
      const path = id.slice(2);
      const members = S.st.nodes.filter((n) => n.path === path || (n.path && n.path.startsWith(path + ".")));
      return {
        id,
        kind: "module",
        path,
        type: D.modules[path] || "",
        ops: members.filter((n) => !n.id.startsWith("in")).length,
        flops: members.reduce((s, n) => s + (n.flops || 0), 0),
        bytes: members.reduce((s, n) => s + (n.bytes || 0), 0),
        share: members.reduce((s, n) => s + (n.share || 0), 0),
        expanded: expanded.has(path),
      };
    }
    const n = S.byId.get(id);
    if (!n) return null;
    const d = {
      id,
      kind: n.op === "kernel" ? "kernel" : id.startsWith("in") ? "input" : id.startsWith("out") ? "output" : "op",
      op: n.op,
      name: n.name || "",
      path: n.path || "",
      module: n.scope ? (D.modules[n.scope] ? `${n.scope}: ${D.modules[n.scope]}` : n.scope) : "",
      phase: n.ph || "",
      attrs: n.attrs || {},
      inputs: n.ins || [],
      outputs: n.outs || [],
      source: n.src || "",
      flops: n.flops || 0,
      bytes: n.bytes || 0,
    };
    if (n.op === "kernel") {
      Object.assign(d, { pattern: n.pattern, root: n.root, ops: n.ops, share: n.share, cycles: n.cycles });
      d.kernels = [{ stage: S.name, id, text: `${n.name} (${n.pattern})` }];
    } else d.kernels = n.k ? n.k.map((k) => ({ stage: S.name, id: "k" + k, text: "kernel " + k })) : kernelsOf(n);
    if (n.o !== undefined && n.op !== "kernel") Object.assign(d, gradientLinks(n));
    return d;
  }

  function select(id, doReveal = true) {
    if (id === null || id === undefined) {
      selected = null;
      selOrigins = null;
      related = new Set();
      showPanel(null);
      draw();
      return null;
    }
    if (!id.startsWith("m:") && !S.byId.has(id)) return null;
    if (doReveal && !id.startsWith("m:")) reveal(id);
    selected = id;
    const d = details(id);
    const n = S.byId.get(id);
    selOrigins = n ? originsOf(n) : null;
    related = new Set();
    if (d.grads) d.grads.filter((l) => l.stage === S.name).forEach((l) => related.add(l.id));
    if (d.forward) d.forward.filter((l) => l.stage === S.name).forEach((l) => related.add(l.id));
    showPanel(d);
    draw();
    return d;
  }

  function fmt(n) {
    for (const [s, p] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]]) if (n >= s) return (n / s).toFixed(2) + " " + p;
    return String(n);
  }

  function fmtBytes(n) {
    for (const [s, p] of [[2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"]]) if (n >= s) return (n / s).toFixed(2) + " " + p;
    return n + " B";
  }

  function showPanel(d) {
    const p = $("panel");
    p.textContent = "";
    const h = (tag, text, cls) => {
      const e = document.createElement(tag);
      if (text !== undefined) e.textContent = text;
      if (cls) e.className = cls;
      p.appendChild(e);
      return e;
    };
    const row = (k, v) => {
      if (v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length)) return;
      const r = h("div", undefined, "row");
      const a = document.createElement("span");
      a.className = "key";
      a.textContent = k;
      r.appendChild(a);
      const b = document.createElement("span");
      b.className = "val";
      if (Array.isArray(v)) v.forEach((x) => b.appendChild(item(x)));
      else b.textContent = v;
      r.appendChild(b);
    };
    const item = (x) => {
      const e = document.createElement("div");
      if (typeof x === "string") e.textContent = x;
      else {
        e.textContent = x.text;
        e.className = "link";
        e.addEventListener("click", () => {
          if (x.stage !== S.name) setStage(x.stage);
          select(x.id);
        });
      }
      return e;
    };
    if (!d) {
      h("h3", D.title);
      h("p", `${S.st.title}: ${S.st.nodes.length} nodes. Click a box: select it (a module also opens or closes). Drag to pan, wheel to zoom.`, "hint");
      if (matches.size) listMatches(h, item);
      if (D.summary) {
        h("h4", "summary");
        h("pre", D.summary);
      }
      return;
    }
    if (d.kind === "module") {
      h("h3", d.path);
      row("type", d.type);
      row("ops", String(d.ops));
      row("FLOPs", fmt(d.flops));
      row("bytes", fmtBytes(d.bytes));
      if (D.stages[S.name].memory && d.share) row("time", (100 * d.share).toFixed(1) + " %");
      row("state", d.expanded ? "expanded" : "collapsed (click to expand)");
      return;
    }
    h("h3", d.kind === "kernel" ? `${d.name}: ${d.pattern}` : d.name ? `${d.name} (${d.op})` : d.op);
    row("kind", d.kind + (d.phase && d.phase !== "forward" ? ` · ${d.phase}` : ""));
    row("module", d.module);
    if (d.path && d.path !== d.module.split(":")[0]) row("group", d.path);
    row("source", d.source);
    row("inputs", d.inputs);
    row("outputs", d.outputs);
    const attrs = Object.entries(d.attrs).map(([k, v]) => `${k} = ${v}`);
    row("attributes", attrs);
    row("kernel", d.kind === "kernel" ? undefined : d.kernels);
    row("ops", d.ops);
    row("FLOPs", d.flops ? fmt(d.flops) : "");
    row("bytes", d.bytes ? fmtBytes(d.bytes) : "");
    if (d.share !== undefined) row("time", `${(100 * d.share).toFixed(2)} % (${fmt(d.cycles)} cycles)`);
    row("gradient ops", d.grads);
    row("forward op", d.forward);
    if (matches.size) listMatches(h, item);
  }

  function listMatches(h, item) {
    h("h4", `${matches.size} matches`);
    const box = h("div", undefined, "matches");
    Array.from(matches)
      .slice(0, 200)
      .forEach((m) => box.appendChild(item(link(S.name, m))));
  }

  // -- search --------------------------------------------------------------------------------------------------------
  function search(text) {
    findMatches(text);
    showPanel(selected ? details(selected) : null);
    draw();
    return Array.from(matches);
  }

  function findMatches(text) {
    const q = (text || "").trim().toLowerCase();
    matches = new Set();
    if (q) {
      S.st.nodes.forEach((n) => {
        const hay = [n.op, n.name, n.path, n.scope, n.pattern, n.root]
          .concat(n.outs || [], n.ins || [])
          .filter(Boolean)
          .join("\n")
          .toLowerCase();
        if (hay.includes(q)) matches.add(n.id);
      });
    }
  }

  // -- memory timeline ----------------------------------------------------------------------------------------------
  function drawMemory() {
    const box = $("memory");
    const m = S.st.memory;
    box.style.display = m ? "block" : "none";
    if (!m) return;
    const chart = $("memchart");
    chart.textContent = "";
    const W = chart.clientWidth || 800, H = 70, n = Math.max(1, m.live.length);
    const top = Math.max(m.peak, m.arena, 1);
    const xs = (i) => 4 + ((W - 8) * i) / Math.max(1, n - 1);
    const ys = (b) => H - 4 - ((H - 14) * b) / top;
    let d = `M${xs(0)},${ys(0)}`;
    m.live.forEach((b, i) => (d += ` L${xs(i)},${ys(b)}`));
    d += ` L${xs(n - 1)},${ys(0)} Z`;
    el("path", { d, class: "live" }, chart);
    el("line", { x1: 0, x2: W, y1: ys(m.arena), y2: ys(m.arena), class: "arena" }, chart);
    el("line", { x1: xs(m.peak_at), x2: xs(m.peak_at), y1: 0, y2: H, class: "peak" }, chart);
    const sel = m.kernels.indexOf(selected);
    if (sel >= 0) el("line", { x1: xs(sel), x2: xs(sel), y1: 0, y2: H, class: "cursor" }, chart);
    $("memlabel").textContent =
      `memory plan: bytes live after each of ${m.live.length} kernels · peak ${fmtBytes(m.peak)} ` +
      `at ${m.kernels[m.peak_at]} · arena ${fmtBytes(m.arena)} (line)`;
    chart.onclick = (ev) => {
      const r = chart.getBoundingClientRect();
      const i = Math.round(((ev.clientX - r.left - 4) / (W - 8)) * (n - 1));
      if (i >= 0 && i < n) select(m.kernels[i]);
    };
  }

  // -- stages ---------------------------------------------------------------------------------------------------------
  function setStage(name) {
    if (!D.stages[name]) return false;
    const keep = selected, origins = selOrigins;
    if (S) expandedBy[S.name] = expanded;
    S = prepare(name);
    expanded = expandedBy[name] || (expandedBy[name] = defaultExpansion());
    selected = null;
    related = new Set();
    document.querySelectorAll("#stages button").forEach((b) => b.classList.toggle("on", b.dataset.stage === name));
    $("time").disabled = !D.profiled || !S.st.memory;
    if (overlay === "time" && $("time").disabled) setOverlay("none", false);
    findMatches($("search").value);
    computeUnits();
    computeLayout();
    fit();
    draw();
    let target = null, also = [];
    if (keep && keep.startsWith("m:") && S.modules.has(keep.slice(2))) target = keep;
    else if (keep && S.byId.has(keep) && (keep.startsWith("in") || keep.startsWith("out"))) target = keep;
    else if (origins && origins.length) {
      const hits = new Set();
      origins.forEach((o) => (S.byOrigin.get(o) || []).forEach((id) => hits.add(id)));
      also = Array.from(hits);
      target = also[0] || null;
    }
    if (target) {
      select(target);
      selOrigins = origins && origins.length ? origins : selOrigins;
      also.forEach((id) => related.add(id));
      draw();
    } else showPanel(null);
    return true;
  }

  function setOverlay(name, redraw = true) {
    overlay = name;
    $("overlay").value = name;
    if (redraw) draw();
  }

  // -- pan and zoom -------------------------------------------------------------------------------------------------
  let drag = null;
  svg.addEventListener("mousedown", (ev) => (drag = { x: ev.clientX, y: ev.clientY, tx: tf.x, ty: tf.y, moved: false }));
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    tf.x = drag.tx + ev.clientX - drag.x;
    tf.y = drag.ty + ev.clientY - drag.y;
    drag.moved = drag.moved || Math.abs(ev.clientX - drag.x) + Math.abs(ev.clientY - drag.y) > 3;
    applyTransform();
  });
  window.addEventListener("mouseup", () => (drag = null));
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    const px = ev.clientX - r.left, py = ev.clientY - r.top;
    const k = Math.max(0.03, Math.min(4, tf.k * Math.exp(-ev.deltaY * 0.0015)));
    tf.x = px - ((px - tf.x) * k) / tf.k;
    tf.y = py - ((py - tf.y) * k) / tf.k;
    tf.k = k;
    applyTransform();
  }, { passive: false });
  svg.addEventListener("click", () => {
    if (!drag || !drag.moved) select(null);
  });

  // -- controls -------------------------------------------------------------------------------------------------------
  Object.keys(D.stages).forEach((name) => {
    const b = document.createElement("button");
    b.textContent = name;
    b.dataset.stage = name;
    b.title = D.stages[name].title;
    b.addEventListener("click", () => setStage(name));
    $("stages").appendChild(b);
  });
  $("title").textContent = D.title;
  $("search").addEventListener("input", (ev) => search(ev.target.value));
  $("overlay").addEventListener("change", (ev) => setOverlay(ev.target.value));
  $("fit").addEventListener("click", fit);
  $("collapse-all").addEventListener("click", () => {
    expanded = new Set();
    refresh(null);
    fit();
  });
  $("expand-all").addEventListener("click", () => {
    expanded = new Set(S.modules);
    refresh(null);
    fit();
  });
  window.addEventListener("resize", () => drawMemory());

  window.graphnn = {
    data: D,
    stages: () => Object.keys(D.stages),
    stage: () => S.name,
    setStage,
    expand,
    collapse,
    expanded: () => Array.from(expanded),
    visibleNodes: () => Array.from(units.keys()),
    search,
    select: (id) => select(id),
    selected: () => selected,
    setOverlay: (name) => setOverlay(name),
  };
  const first = Object.keys(D.stages)[0];
  setStage(first);
  document.body.dataset.ready = "1";
})();

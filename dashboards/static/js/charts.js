/* Inline SVG charts and the site map: no library, no build step. */
"use strict";

const LinliCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  /* points: [{t: Date|string, avg, min, max}] → a line with a min..max band. */
  function line(points, options) {
    const opts = Object.assign({ width: 560, height: 200, unit: "" }, options || {});
    const pad = { l: 44, r: 10, t: 10, b: 24 };
    const data = points
      .map((p) => ({ t: new Date(p.t).getTime(), avg: Number(p.avg), min: Number(p.min ?? p.avg), max: Number(p.max ?? p.avg) }))
      .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.avg))
      .sort((a, b) => a.t - b.t);
    const root = svg("svg", { class: "chart", viewBox: `0 0 ${opts.width} ${opts.height}`, width: "100%", role: "img" });
    if (data.length === 0) return root;
    const t0 = data[0].t, t1 = Math.max(data[data.length - 1].t, t0 + 1);
    let lo = Math.min(...data.map((p) => p.min)), hi = Math.max(...data.map((p) => p.max));
    if (hi === lo) { hi += 1; lo -= 1; }
    const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (opts.width - pad.l - pad.r);
    const y = (v) => opts.height - pad.b - ((v - lo) / (hi - lo)) * (opts.height - pad.t - pad.b);
    const band = data.map((p) => `${x(p.t)},${y(p.max)}`).concat(data.slice().reverse().map((p) => `${x(p.t)},${y(p.min)}`));
    root.append(
      svg("line", { class: "axis", x1: pad.l, y1: opts.height - pad.b, x2: opts.width - pad.r, y2: opts.height - pad.b }),
      svg("line", { class: "axis", x1: pad.l, y1: pad.t, x2: pad.l, y2: opts.height - pad.b }),
      svg("path", { class: "band", d: "M" + band.join("L") + "Z" }),
      svg("path", { class: "line", d: "M" + data.map((p) => `${x(p.t)},${y(p.avg)}`).join("L") }),
      svg("text", { x: 2, y: pad.t + 10 }, hi.toFixed(1) + opts.unit),
      svg("text", { x: 2, y: opts.height - pad.b }, lo.toFixed(1) + opts.unit),
      svg("text", { x: pad.l, y: opts.height - 6 }, Linli.formatTime(new Date(t0).toISOString(), false)),
      svg("text", { x: opts.width - pad.r - 60, y: opts.height - 6 }, Linli.formatTime(new Date(t1).toISOString(), false)),
    );
    return root;
  }

  /* devices: [{id, building, floor, level, zone, state}] → buildings as columns, floors as rows. */
  function siteMap(devices, onSelect) {
    const buildings = new Map();
    for (const d of devices) {
      const b = d.building || "";
      if (!buildings.has(b)) buildings.set(b, new Map());
      const floors = buildings.get(b);
      const f = d.floor || d.zone || "";
      if (!floors.has(f)) floors.set(f, { level: d.level ?? null, devices: [] });
      floors.get(f).devices.push(d);
    }
    const colW = 220, rowH = 46, dot = 7, perRow = 12;
    let height = 0;
    const columns = [];
    let index = 0;
    for (const [building, floors] of [...buildings.entries()].sort()) {
      // Top floor first: by level when known, else by the floor id in natural order, descending.
      const sorted = [...floors.entries()].sort((a, b) => (b[1].level ?? 0) - (a[1].level ?? 0) || String(b[0]).localeCompare(String(a[0]), undefined, { numeric: true }));
      const rows = sorted.map(([floor, info]) => ({ floor, info, lines: Math.max(1, Math.ceil(info.devices.length / perRow)) }));
      const h = 40 + rows.reduce((sum, r) => sum + rowH + (r.lines - 1) * 16, 0);
      height = Math.max(height, h);
      columns.push({ building, rows, x: 10 + index * (colW + 20), h });
      index += 1;
    }
    const root = svg("svg", { class: "map", viewBox: `0 0 ${Math.max(400, 20 + index * (colW + 20))} ${height + 20}`, width: "100%" });
    for (const col of columns) {
      const group = svg("g", { "data-building": col.building });
      group.append(
        svg("rect", { class: "bldg", x: col.x, y: 10, width: colW, height: col.h, rx: 8 }),
        svg("text", { x: col.x + 10, y: 30, "font-weight": "700" }, col.building || Linli.t("map.no_building")),
      );
      let y = 44;
      for (const row of col.rows) {
        const label = row.info.level !== null && row.info.level !== undefined ? Linli.t("map.floor", { n: row.info.level }) : row.floor || "";
        group.append(svg("text", { x: col.x + 10, y: y + 14 }, label));
        row.info.devices.forEach((d, i) => {
          const cx = col.x + 70 + (i % perRow) * 12, cy = y + 10 + Math.floor(i / perRow) * 16;
          const circle = svg("circle", { cx, cy, r: dot / 1.4, class: "dev dev-" + d.state, "data-device": d.id }, svg("title", {}, `${d.id} (${d.kind ? Linli.tOr("kind." + d.kind, d.kind) : ""}) ${Linli.t("state." + d.state)}`));
          if (onSelect) circle.addEventListener("click", () => onSelect(d));
          group.append(circle);
        });
        y += rowH + (row.lines - 1) * 16;
      }
      root.append(group);
    }
    return root;
  }

  return { line, siteMap };
})();

// Line charts of a node's last 15 minutes (SVG, no library).

const NS = "http://www.w3.org/2000/svg";

export function lineChart(svg, samples, key, unit) {
  const pts = samples.filter((s) => s[key] != null).map((s) => [s.t, s[key]]);
  svg.replaceChildren();
  const w = 300;
  const hgt = 110;
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt + 10}`);
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...pts.map((p) => p[1]));
  const last = pts.length ? pts[pts.length - 1][1] : null;
  const label = document.createElementNS(NS, "title");
  label.textContent = `${key}: latest ${last == null ? "none" : last.toFixed(1)} ${unit}, max ${max.toFixed(1)}`;
  svg.append(label);
  const axis = document.createElementNS(NS, "line");
  Object.entries({ x1: 0, y1: hgt, x2: w, y2: hgt, stroke: "#d8dde4" }).forEach(([k, v]) => axis.setAttribute(k, v));
  svg.append(axis);
  const text = document.createElementNS(NS, "text");
  Object.entries({ x: 4, y: 12, "font-size": 11, fill: "#5b6675" }).forEach(([k, v]) => text.setAttribute(k, v));
  text.textContent = `max ${max.toFixed(1)} ${unit}` + (last == null ? "" : ` · now ${last.toFixed(1)}`);
  svg.append(text);
  if (pts.length < 2) return;
  const t0 = pts[0][0];
  const span = Math.max(1, pts[pts.length - 1][0] - t0);
  const d = pts
    .map(([t, v], i) => `${i ? "L" : "M"}${((t - t0) / span) * w},${hgt - (v / max) * (hgt - 18)}`)
    .join(" ");
  const path = document.createElementNS(NS, "path");
  Object.entries({ d, fill: "none", stroke: "#1f5fbf", "stroke-width": 2 }).forEach(([k, v]) => path.setAttribute(k, v));
  svg.append(path);
}

// The topology drawing: the primary on top, an arrow to each replica, each
// node with its role, status, lag and GTID position (SVG, redrawn on every
// refresh).

const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const COLORS = { active: "#1c7c3c", failed: "#b3261e", down: "#b3261e" };

function box(svg, x, y, node, probe) {
  const g = el("g", { class: "node", "data-node": node.id, "data-role": node.role });
  const color = COLORS[node.status] || "#a86300";
  g.append(el("rect", { x, y, width: 220, height: 78, rx: 8, fill: "#fff", stroke: color, "stroke-width": 2 }));
  g.append(el("text", { x: x + 10, y: y + 20, "font-weight": 700, "font-size": 13 }, `${node.role.toUpperCase()} · ${node.status}`));
  g.append(el("text", { x: x + 10, y: y + 38, "font-size": 12 }, node.id));
  const lag = probe && probe.lag_seconds != null ? `lag ${probe.lag_seconds}s` : node.role === "primary" ? "writable" : "lag —";
  g.append(el("text", { x: x + 10, y: y + 55, "font-size": 12 }, `${node.host}:${node.port} · ${lag}`));
  const gtid = (probe && probe.gtid_position) || "—";
  g.append(el("text", { x: x + 10, y: y + 71, "font-size": 11, fill: "#5b6675" }, `GTID ${gtid}`));
  svg.append(g);
}

export function drawTopology(svg, nodes, status) {
  const probes = {};
  for (const n of (status && status.nodes) || []) probes[n.node_id] = n.probes;
  svg.replaceChildren();
  const primary = nodes.find((n) => n.role === "primary");
  const replicas = nodes.filter((n) => n.role !== "primary");
  const width = Math.max(1, replicas.length) * 240 + 20;
  svg.setAttribute("viewBox", `0 0 ${width} 230`);
  // Drawn at its own size, shrunk (never grown) to fit narrow windows.
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", "230");
  svg.append(el("defs", {}));
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#5b6675" }));
  svg.firstChild.append(marker);
  const px = width / 2 - 110;
  if (primary) box(svg, px, 10, primary, probes[primary.id]);
  replicas.forEach((r, i) => {
    const x = 10 + i * 240;
    if (primary) {
      svg.append(el("line", { x1: px + 110, y1: 88, x2: x + 110, y2: 140, stroke: "#5b6675", "stroke-width": 1.5, "marker-end": "url(#arrow)" }));
    }
    box(svg, x, 142, r, probes[r.id]);
  });
  const title = el("title", {}, `Topology: primary ${primary ? primary.id : "none"}, ${replicas.length} replica(s)`);
  svg.prepend(title);
}

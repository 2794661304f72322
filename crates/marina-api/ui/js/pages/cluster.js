// One cluster: its topology drawn live (refreshed every 2 s), node probes and
// actions, charts of the last 15 minutes, operations with their steps,
// backups and the events timeline. Actions show their operation's progress
// to the end in the "Progress" panel.

import { del, get, patch, post } from "../api.js";
import { NAME_PATTERN, h, badge, copyButton, field, fmtTime, formDialog, liveRender } from "../dom.js";
import { runAndWatch, stepsList } from "../ops.js";
import { drawTopology } from "../topology.js";
import { lineChart } from "../charts.js";
import { connectionString } from "./clusters.js";

const REFRESH_MS = 2000;

export async function clusterPage(main, id, navigate) {
  const progress = h("div", { id: "progress", class: "card", "aria-live": "polite" }, h("p", { class: "muted" }, "No action running."));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "topology");
  svg.setAttribute("id", "topology");
  svg.setAttribute("role", "img");
  const head = h("div");
  const nodesBox = h("div");
  const chartsBox = h("div", { class: "charts" });
  const opsBox = h("div");
  const backupsBox = h("div");
  const eventsBox = h("ol", { class: "events" });
  main.replaceChildren(head, h("h2", {}, "Progress"), progress, h("h2", {}, "Topology"), h("div", { class: "card" }, svg),
    h("h2", {}, "Nodes"), nodesBox, h("h2", {}, "Last 15 minutes"), chartsBox,
    h("h2", {}, "Operations"), opsBox, h("h2", {}, "Backups"), backupsBox, h("h2", {}, "Events"), eventsBox);

  let cluster = null;
  let sizes = [];
  const act = async (start) => {
    await runAndWatch(start, progress);
    await refresh();
  };

  async function refresh() {
    cluster = await get(`/v1/clusters/${id}`);
    const status = await get(`/v1/clusters/${id}/status`).catch(() => null);
    renderHead();
    drawTopology(svg, cluster.nodes, status);
    renderNodes(status);
  }

  async function refreshSlow() {
    const [ops, events, backups] = await Promise.all([
      get(`/v1/clusters/${id}/operations?limit=10`),
      get(`/v1/clusters/${id}/events?limit=30`),
      get(`/v1/clusters/${id}/backups?limit=20`).catch(() => ({ data: [] })),
    ]);
    renderOps(ops.data);
    renderBackups(backups.data);
    eventsBox.replaceChildren(...events.data.map((e) =>
      h("li", {}, h("span", { class: "muted" }, fmtTime(e.created_at)), " ", h("strong", {}, e.type), " — ", e.message)));
    renderCharts();
  }

  function renderHead() {
    liveRender(head, [cluster.name, cluster.status, cluster.size_id, cluster.nodes.map((n) => [n.id, n.role]), cluster.endpoints, cluster.failover], drawHead);
  }

  function drawHead() {
    const conn = connectionString(cluster);
    const replicas = cluster.nodes.filter((n) => n.role === "replica");
    head.replaceChildren(
      h("div", { class: "row spread" },
        h("h1", {}, `Cluster ${cluster.name} `, badge(cluster.status)),
        h("div", { class: "row" },
          h("button", { type: "button", id: "switchover", disabled: !replicas.length, onclick: switchover }, "Switchover"),
          h("button", { type: "button", class: "secondary", id: "failover", disabled: !replicas.length, onclick: failover }, "Failover"),
          h("button", { type: "button", class: "secondary", id: "add-node", onclick: addNode }, "Add node"),
          h("button", { type: "button", class: "secondary", id: "reboot-cluster", onclick: () => act(() => post(`/v1/clusters/${id}/reboot`)) }, "Rolling reboot"),
          h("button", { type: "button", class: "secondary", id: "backup-now", onclick: () => act(() => post(`/v1/clusters/${id}/backups`, { method: "physical" })) }, "Backup now"),
          h("button", { type: "button", class: "danger", id: "delete-cluster", onclick: deleteCluster }, "Delete"))),
      h("div", { class: "card" },
        h("p", {}, `Size ${cluster.size_id} · ${cluster.nodes.length} node(s) · ${cluster.replication} replication · MariaDB ${cluster.version} · failover ${cluster.failover.mode}`),
        conn ? h("div", { class: "row" }, h("code", {}, conn), copyButton(conn)) : h("p", { class: "muted" }, "Endpoints appear once the cluster is active.")));
  }

  function renderNodes(status) {
    const probes = {};
    for (const n of (status && status.nodes) || []) probes[n.node_id] = n.probes;
    const shown = cluster.nodes.map((n) => {
      const p = probes[n.id] || {};
      return [n, p.reachable, p.writable, p.lag_seconds, p.gtid_position];
    });
    liveRender(nodesBox, shown, () => drawNodes(probes));
  }

  function drawNodes(probes) {
    const rows = cluster.nodes.map((n) => {
      const p = probes[n.id] || {};
      return h("tr", { "data-node": n.id },
        h("td", { class: "mono" }, n.id),
        h("td", {}, n.role),
        h("td", {}, badge(n.status), n.status_reason ? h("div", { class: "muted" }, n.status_reason) : null),
        h("td", { class: "mono" }, `${n.host}:${n.port}`),
        h("td", {}, n.size_id),
        h("td", {}, p.reachable ? "yes" : "no"),
        h("td", {}, p.writable ? "writable" : "read-only"),
        h("td", {}, p.lag_seconds == null ? "—" : `${p.lag_seconds}s`),
        h("td", { class: "mono" }, p.gtid_position || "—"),
        h("td", {}, h("div", { class: "row" },
          h("button", { type: "button", class: "secondary", "aria-label": `Resize ${n.id}`, onclick: () => resize(n) }, "Resize"),
          h("button", { type: "button", class: "secondary", "aria-label": `Reboot ${n.id}`, onclick: () => act(() => post(`/v1/clusters/${id}/nodes/${n.id}/reboot`)) }, "Reboot"),
          h("button", { type: "button", class: "danger", "aria-label": `Remove ${n.id}`, disabled: cluster.nodes.length < 2, onclick: () => removeNode(n) }, "Remove"))));
    });
    nodesBox.replaceChildren(h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Node", "Role", "Status", "Address", "Size", "Reachable", "Mode", "Lag", "GTID position", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))));
  }

  async function renderCharts() {
    const cards = [];
    for (const n of cluster.nodes) {
      const hist = await get(`/v1/clusters/${id}/nodes/${n.id}/history`).catch(() => ({ samples: [] }));
      for (const [key, title, unit] of [["queries_per_second", "Queries/s", "q/s"], ["connections", "Connections", ""], ["lag_seconds", "Replication lag", "s"]]) {
        const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        lineChart(svg, hist.samples, key, unit);
        cards.push(h("div", { class: "card chart" }, h("h3", {}, `${title} · ${n.id} (${n.role})`), svg));
      }
    }
    chartsBox.replaceChildren(...cards);
  }

  function renderOps(ops) {
    opsBox.replaceChildren(...ops.map((op) => h("details", { class: "card" },
      h("summary", {}, h("strong", {}, op.type), " ", badge(op.status), " ", h("span", { class: "muted" }, fmtTime(op.created_at))),
      stepsList(op),
      op.error ? h("p", { class: "error" }, op.error.message) : null)));
  }

  function renderBackups(backups) {
    if (!backups.length) {
      backupsBox.replaceChildren(h("p", { class: "muted" }, "No backups yet."));
      return;
    }
    backupsBox.replaceChildren(h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Backup", "Method", "Status", "Size", "Finished", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, backups.map((b) => h("tr", {},
        h("td", { class: "mono" }, b.id), h("td", {}, b.method), h("td", {}, badge(b.status)),
        h("td", {}, b.size_bytes == null ? "—" : `${(b.size_bytes / 1048576).toFixed(1)} MiB`),
        h("td", {}, fmtTime(b.finished_at)),
        h("td", {}, b.status === "completed" ? h("button", { type: "button", class: "secondary", onclick: () => restore(b) }, "Restore into new cluster") : null)))))));
  }

  async function switchover() {
    const replicas = cluster.nodes.filter((n) => n.role === "replica");
    const target = h("select", { name: "target" }, h("option", { value: "" }, "Marina chooses the best replica"),
      replicas.map((r) => h("option", { value: r.id }, `${r.id} (${r.status})`)));
    const started = await formDialog("Switchover", () => [field("New primary", target)], "Switch over",
      () => post(`/v1/clusters/${id}/switchover`, target.value ? { target_node_id: target.value } : {}));
    if (started) await act(async () => started);
  }

  async function failover() {
    const started = await formDialog("Failover", () => [h("p", {}, "Promote a replica now, without waiting for the primary. Use it when the primary is lost.")],
      "Fail over", () => post(`/v1/clusters/${id}/failover`, {}), true);
    if (started) await act(async () => started);
  }

  async function sizeSelect(current) {
    if (!sizes.length) sizes = (await get("/v1/node-sizes")).data;
    return h("select", { name: "size" }, sizes.map((s) => h("option", { value: s.id, selected: s.id === current }, s.title || s.id)));
  }

  async function addNode() {
    const size = await sizeSelect(cluster.size_id);
    const started = await formDialog("Add node", () => [field("Node size", size)], "Add",
      () => post(`/v1/clusters/${id}/nodes`, { size_id: size.value }));
    if (started) await act(async () => started);
  }

  async function resize(n) {
    const size = await sizeSelect(n.size_id);
    const started = await formDialog(`Resize ${n.id}`, () => [field("New size", size)], "Resize",
      () => patch(`/v1/clusters/${id}/nodes/${n.id}`, { size_id: size.value }));
    if (started) await act(async () => started);
  }

  async function removeNode(n) {
    const started = await formDialog(`Remove ${n.id}`, () => [h("p", {}, n.role === "primary" ? "The primary is switched over first." : "The replica leaves the endpoints, stops, and its data is deleted.")],
      "Remove", () => del(`/v1/clusters/${id}/nodes/${n.id}`), true);
    if (started) await act(async () => started);
  }

  async function restore(b) {
    const name = h("input", { name: "name", required: true, pattern: NAME_PATTERN, value: `${cluster.name}-restored` });
    const created = await formDialog(`Restore ${b.id}`, () => [field("New cluster name", name)], "Restore",
      () => post("/v1/clusters", { name: name.value.trim(), size_id: cluster.size_id, nodes: cluster.nodes.length, restore: { backup_id: b.id } }));
    if (created) {
      progress.replaceChildren(h("p", { class: "secret" }, `Cluster ${created.cluster.name}: admin password (shown once) `, h("code", {}, created.credentials.password)));
      const box = h("div");
      progress.append(box);
      await runAndWatch(async () => created, box);
    }
  }

  async function deleteCluster() {
    const confirmInput = h("input", { name: "confirm", autocomplete: "off", required: true });
    const started = await formDialog(`Delete ${cluster.name}`, () => [
      h("p", {}, "This stops every node and deletes its data. Backups are kept."),
      field(`Type the cluster name (${cluster.name}) to confirm`, confirmInput),
    ], "Delete cluster", () => {
      if (confirmInput.value !== cluster.name) throw new Error(`Type ${cluster.name} exactly to delete it.`);
      return del(`/v1/clusters/${id}`);
    }, true);
    if (started) {
      await runAndWatch(async () => started, progress);
      navigate("#/clusters");
    }
  }

  await refresh();
  await refreshSlow();
  let stopped = false;
  let tick = 0;
  const loop = async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, REFRESH_MS));
      if (stopped) break;
      try {
        await refresh();
        if (++tick % 3 === 0) await refreshSlow();
      } catch (e) {
        if (e.status === 404) break;
      }
    }
  };
  loop();
  return () => {
    stopped = true;
  };
}

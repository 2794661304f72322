// The clusters page: status, size, nodes, endpoints and a copy-able
// connection string per cluster; "Create cluster" from the size catalog,
// with the create operation's progress to the end.

import { all, get, post } from "../api.js";
import { NAME_PATTERN, h, badge, copyButton, field, formDialog, liveRender } from "../dom.js";
import { watch } from "../ops.js";

export function connectionString(c) {
  const w = c.endpoints && c.endpoints.writer;
  return w ? `mariadb -h ${w.host} -P ${w.port} -u admin -p` : null;
}

export async function clustersPage(main) {
  const list = h("div");
  main.replaceChildren(
    h("div", { class: "row spread" },
      h("h1", {}, "Clusters"),
      h("button", { type: "button", id: "create-cluster", onclick: createCluster }, "Create cluster")),
    list);
  const render = async () => {
    const clusters = await all("/v1/clusters");
    liveRender(list, clusters, () => list.replaceChildren(clusters.length
      ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Name", "Status", "Size", "Nodes", "Endpoints", "Connect"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, clusters.map(row))))
      : h("p", { class: "muted" }, "No clusters yet.")));
  };
  await render();
  // Statuses change on their own (creating → active, failovers): keep the
  // list current while it is shown.
  const timer = setInterval(() => render().catch(() => {}), 2000);
  return () => clearInterval(timer);
}

function row(c) {
  const conn = connectionString(c);
  return h("tr", { "data-cluster": c.name },
    h("td", {}, h("a", { href: `#/clusters/${c.id}` }, c.name)),
    h("td", {}, badge(c.status)),
    h("td", {}, c.size_id),
    h("td", {}, String(c.nodes.length)),
    h("td", {}, c.endpoints ? h("span", { class: "mono" }, `${c.endpoints.writer.host}:${c.endpoints.writer.port} (writer)`, h("br"), `${c.endpoints.reader.host}:${c.endpoints.reader.port} (reader)`) : h("span", { class: "muted" }, "not yet")),
    h("td", {}, conn ? h("div", { class: "row" }, h("code", {}, conn), copyButton(conn)) : "—"));
}

async function createCluster() {
  const sizes = (await get("/v1/node-sizes")).data;
  const name = h("input", { name: "name", required: true, pattern: NAME_PATTERN, autocomplete: "off" });
  const size = h("select", { name: "size" }, sizes.map((s) => h("option", { value: s.id }, s.title || s.id)));
  const nodes = h("input", { name: "nodes", type: "number", min: "1", max: "9", value: "3", required: true });
  const replication = h("select", { name: "replication" },
    h("option", { value: "semisync" }, "semi-synchronous"), h("option", { value: "async" }, "asynchronous"));
  const created = await formDialog("Create cluster", () => [
    field("Name (lower case letters, digits, dashes)", name),
    field("Node size", size),
    field("Nodes (1 to 9)", nodes),
    field("Replication", replication),
  ], "Create", () => post("/v1/clusters", {
    name: name.value.trim(),
    size_id: size.value,
    nodes: Number(nodes.value),
    replication: replication.value,
  }));
  if (!created) return;
  showCreated(created);
}

// The one-time password and the create operation's progress.
function showCreated(created) {
  const progress = h("div", { id: "op-progress" });
  const d = h("dialog", { "aria-labelledby": "created-title" },
    h("h2", { id: "created-title" }, `Cluster ${created.cluster.name}`),
    h("p", { class: "secret" }, "Admin password (shown once): ", h("code", { id: "admin-password" }, created.credentials.password), " ", copyButton(created.credentials.password)),
    progress,
    h("div", { class: "dialog-actions" }, h("button", { type: "button", id: "close-created", onclick: () => d.close() }, "Close")));
  document.body.append(d);
  d.addEventListener("close", () => d.remove());
  d.showModal();
  watch(created.operation.id, progress).catch((e) => progress.replaceChildren(h("p", { class: "error" }, e.message)));
}

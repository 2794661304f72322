// Security groups and their rules: who may connect to a cluster's endpoints.

import { all, del, post } from "../api.js";
import { NAME_PATTERN, h, field, formDialog, fmtTime } from "../dom.js";

export async function groupsPage(main, refresh) {
  const groups = await all("/v1/security-groups");
  main.replaceChildren(
    h("div", { class: "row spread" }, h("h1", {}, "Security groups"),
      h("button", { type: "button", id: "create-group", onclick: () => createGroup(refresh) }, "Create group")),
    ...(groups.length ? [] : [h("p", { class: "muted" }, "No security groups: endpoints admit loopback only.")]),
    ...groups.map((g) => h("section", { class: "card", "data-group": g.name },
      h("div", { class: "row spread" },
        h("h2", {}, g.name, " ", h("span", { class: "mono muted" }, g.id)),
        h("div", { class: "row" },
          h("button", { type: "button", class: "secondary", onclick: () => addRule(g, refresh) }, "Add rule"),
          h("button", { type: "button", class: "danger", "aria-label": `Delete group ${g.name}`, onclick: () => deleteGroup(g, refresh) }, "Delete"))),
      g.description ? h("p", { class: "muted" }, g.description) : null,
      g.rules.length
        ? h("table", {}, h("thead", {}, h("tr", {}, ["CIDR", "Ports", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, g.rules.map((r) => h("tr", {},
            h("td", { class: "mono" }, r.cidr), h("td", {}, `${r.from_port}–${r.to_port}`), h("td", {}, fmtTime(r.created_at)),
            h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Delete rule ${r.cidr}`, onclick: () => del(`/v1/security-groups/${g.id}/rules/${r.id}`).then(refresh) }, "Delete"))))))
        : h("p", { class: "muted" }, "No rules: nobody is admitted."))));
  return () => {};
}

async function createGroup(refresh) {
  const name = h("input", { name: "name", required: true, pattern: NAME_PATTERN });
  const description = h("input", { name: "description" });
  const made = await formDialog("Create security group", () => [field("Name", name), field("Description", description)], "Create",
    () => post("/v1/security-groups", { name: name.value.trim(), description: description.value }));
  if (made) refresh();
}

async function addRule(g, refresh) {
  const cidr = h("input", { name: "cidr", required: true, placeholder: "127.0.0.0/8" });
  const from = h("input", { name: "from", type: "number", min: "1", max: "65535", value: "3306", required: true });
  const to = h("input", { name: "to", type: "number", min: "1", max: "65535", value: "3306", required: true });
  const made = await formDialog(`Add rule to ${g.name}`, () => [field("Source network (CIDR)", cidr), field("From port", from), field("To port", to)], "Add",
    () => post(`/v1/security-groups/${g.id}/rules`, { cidr: cidr.value.trim(), from_port: Number(from.value), to_port: Number(to.value) }));
  if (made) refresh();
}

async function deleteGroup(g, refresh) {
  const done = await formDialog(`Delete ${g.name}`, () => [h("p", {}, "Detach it from its clusters first.")], "Delete",
    () => del(`/v1/security-groups/${g.id}`).then(() => true), true);
  if (done) refresh();
}

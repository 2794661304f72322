// API tokens: list, create (the secret shown once), revoke.

import { all, del, post } from "../api.js";
import { NAME_PATTERN, h, copyButton, dialog, field, fmtTime, formDialog } from "../dom.js";

export async function tokensPage(main, refresh) {
  const tokens = await all("/v1/tokens");
  main.replaceChildren(
    h("div", { class: "row spread" }, h("h1", {}, "Tokens"),
      h("button", { type: "button", id: "create-token", onclick: () => createToken(refresh) }, "Create token")),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Name", "Id", "Scopes", "Created", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, tokens.map((t) => h("tr", { "data-token": t.name },
        h("td", {}, t.name), h("td", { class: "mono" }, t.id), h("td", {}, t.scopes.join(", ")),
        h("td", {}, fmtTime(t.created_at)), h("td", {}, fmtTime(t.last_used_at)),
        h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Revoke ${t.name}`, onclick: () => revoke(t, refresh) }, "Revoke"))))))));
  return () => {};
}

async function createToken(refresh) {
  const name = h("input", { name: "name", id: "token-name", required: true, pattern: NAME_PATTERN, autocomplete: "off" });
  const scopes = ["read", "write", "admin"].map((s) => h("input", { type: "checkbox", name: "scope", value: s, checked: s === "read", id: `scope-${s}` }));
  const created = await formDialog("Create token", () => [
    field("Name (lower case letters, digits, dashes)", name),
    h("fieldset", {}, h("legend", {}, "Scopes"),
      scopes.map((c) => h("label", { class: "check", for: c.id }, c, c.value))),
  ], "Create", () => post("/v1/tokens", { name: name.value.trim(), scopes: scopes.filter((c) => c.checked).map((c) => c.value) }));
  if (!created) return;
  await dialog("Token created", (close) => h("div", {},
    h("p", {}, `Token ${created.token.name} (${created.token.scopes.join(", ")}).`),
    h("p", { class: "secret" }, "Secret (shown once, copy it now): ", h("code", { id: "token-secret" }, created.secret)),
    h("div", { class: "dialog-actions" }, copyButton(created.secret), h("button", { type: "button", onclick: () => close(true) }, "Done"))));
  refresh();
}

async function revoke(t, refresh) {
  const done = await formDialog(`Revoke ${t.name}`, () => [h("p", {}, "Requests with this token are refused from now on.")],
    "Revoke", () => del(`/v1/tokens/${t.id}`).then(() => true), true);
  if (done) refresh();
}

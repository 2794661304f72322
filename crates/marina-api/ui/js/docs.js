// The API reference at /docs: renders /v1/openapi.json (tags, operations,
// parameters, bodies and responses with their schemas) and lets a reader
// try each call with a bearer token kept in sessionStorage, like the
// console's. Text only, never HTML from the document.

import { setToken, token } from "./api.js";
import { banner, h } from "./dom.js";

const METHODS = ["get", "post", "put", "patch", "delete"];

// `#/components/schemas/X` → the schema object.
function deref(doc, s, seen = new Set()) {
  if (!s || !s.$ref) return s || {};
  if (seen.has(s.$ref)) return {};
  seen.add(s.$ref);
  const name = s.$ref.split("/").pop();
  return deref(doc, doc.components.schemas[name], seen);
}

// A compact, readable type of a schema: `string`, `[Node]`, `{name, size_id}`.
function typeOf(doc, s, depth = 0) {
  if (!s) return "any";
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map((x) => typeOf(doc, x, depth)).join(" | ");
  if (s.allOf) return s.allOf.map((x) => typeOf(doc, x, depth)).join(" & ");
  const t = Array.isArray(s.type) ? s.type.filter((x) => x !== "null").join("|") : s.type;
  if (t === "array") return `[${typeOf(doc, s.items, depth)}]`;
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  return t || "object";
}

// An example value for a schema (for the body of "try it").
function example(doc, s, depth = 0) {
  s = deref(doc, s);
  if (s.example !== undefined) return s.example;
  if (depth > 4) return null;
  if (s.oneOf || s.anyOf) return example(doc, (s.oneOf || s.anyOf)[0], depth + 1);
  if (s.allOf) return Object.assign({}, ...s.allOf.map((x) => example(doc, x, depth + 1)));
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  if (s.enum) return s.enum[0];
  if (t === "array") return [];
  if (t === "string") return "";
  if (t === "integer" || t === "number") return 0;
  if (t === "boolean") return false;
  const out = {};
  for (const name of s.required || []) {
    out[name] = example(doc, (s.properties || {})[name], depth + 1);
  }
  return out;
}

function schemaTable(doc, schema) {
  const s = deref(doc, schema);
  const props = Object.entries(s.properties || {});
  if (!props.length) return h("p", { class: "mono" }, typeOf(doc, schema));
  const required = new Set(s.required || []);
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Type"), h("th", {}, "Description"))),
    h("tbody", {}, props.map(([name, p]) => h("tr", {},
      h("td", { class: "mono" }, name, required.has(name) ? " *" : ""),
      h("td", { class: "mono" }, typeOf(doc, p)),
      h("td", {}, p.description || deref(doc, p).description || ""))))));
}

function opId(method, path) {
  return `${method}-${path}`.replace(/[^a-zA-Z0-9]+/g, "-");
}

// The "try it" form of one operation.
function tryIt(doc, method, path, op) {
  const params = (op.parameters || []).filter((p) => p.in === "path" || p.in === "query");
  const inputs = params.map((p) => {
    const id = `${opId(method, path)}-${p.name}`;
    return [p, h("input", { id, name: p.name, placeholder: p.in === "path" ? "required" : "optional" })];
  });
  const bodySchema = op.requestBody?.content?.["application/json"]?.schema;
  const body = bodySchema
    ? h("textarea", { rows: 6, class: "mono", "aria-label": "Request body (JSON)" },
      JSON.stringify(example(doc, bodySchema), null, 2))
    : null;
  const out = h("pre", { class: "mono response", "aria-live": "polite" });
  const form = h("form", { class: "try" },
    inputs.map(([p, input]) => h("div", {}, h("label", { for: input.id }, `${p.name} (${p.in})`), input)),
    body ? h("div", {}, h("label", {}, "Body (JSON)"), body) : null,
    h("button", { type: "submit" }, "Send"), out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const [p, input] of inputs) {
      if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(input.value));
      else if (input.value) query.set(p.name, input.value);
    }
    if ([...query].length) url += `?${query}`;
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const init = { method: method.toUpperCase(), headers };
    if (body) {
      headers["Content-Type"] = "application/json";
      init.body = body.value;
    }
    out.textContent = `${init.method} ${url} …`;
    try {
      const resp = await fetch(url, init);
      const text = await resp.text();
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch { /* not JSON: shown as is */ }
      out.textContent = `${init.method} ${url}\nHTTP ${resp.status}\n\n${shown}`;
    } catch (err) {
      out.textContent = `${init.method} ${url}: ${err.message}`;
    }
  });
  return h("details", { class: "try-it" }, h("summary", {}, "Try it"), form);
}

function operation(doc, method, path, op) {
  const responses = Object.entries(op.responses || {}).map(([code, r]) => {
    const schema = r.content?.["application/json"]?.schema;
    return h("li", {}, h("span", { class: "mono" }, code), " ", r.description || "",
      schema ? h("span", { class: "mono muted" }, ` → ${typeOf(doc, schema)}`) : "");
  });
  const params = op.parameters || [];
  const bodySchema = op.requestBody?.content?.["application/json"]?.schema;
  return h("section", { class: "card op", id: opId(method, path) },
    h("h3", {}, h("span", { class: `method m-${method}` }, method.toUpperCase()), " ", h("code", {}, path)),
    op.summary || op.description ? h("p", {}, op.summary || op.description) : null,
    op.security && op.security.length ? null : h("p", { class: "muted" }, "No token needed."),
    params.length ? h("div", {}, h("h4", {}, "Parameters"), h("ul", {}, params.map((p) =>
      h("li", {}, h("code", {}, p.name), ` (${p.in}${p.required ? ", required" : ""}) `,
        h("span", { class: "mono muted" }, typeOf(doc, p.schema)), p.description ? ` — ${p.description}` : "")))) : null,
    bodySchema ? h("div", {}, h("h4", {}, `Body: ${typeOf(doc, bodySchema)}`), schemaTable(doc, bodySchema)) : null,
    h("h4", {}, "Responses"), h("ul", {}, responses),
    tryIt(doc, method, path, op));
}

async function main() {
  const form = document.getElementById("auth");
  const input = document.getElementById("token");
  input.value = token() || "";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    banner(input.value.trim() ? "Token kept for this browser session." : "Token cleared.", "info");
  });
  let doc;
  try {
    const resp = await fetch("/v1/openapi.json", { headers: { Accept: "application/json" } });
    doc = await resp.json();
  } catch (err) {
    banner(`Cannot load /v1/openapi.json: ${err.message}`);
    return;
  }
  const byTag = new Map();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of METHODS.filter((m) => ops[m])) {
      const tag = (ops[method].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([method, path, ops[method]]);
    }
  }
  const tags = [...byTag.keys()].sort((a, b) => (a.startsWith("compat") - b.startsWith("compat")) || a.localeCompare(b));
  const main = document.getElementById("main");
  main.replaceChildren(
    h("h1", {}, doc.info.title, " ", h("span", { class: "muted" }, doc.info.version)),
    h("p", {}, doc.info.description || ""),
    ...tags.map((tag) => h("div", { id: `tag-${tag.replace(/[^a-z0-9]+/gi, "-")}` },
      h("h2", {}, tag), byTag.get(tag).map(([m, p, op]) => operation(doc, m, p, op)))));
  document.getElementById("toc").replaceChildren(h("ul", {}, tags.map((tag) =>
    h("li", {}, h("a", { href: `#tag-${tag.replace(/[^a-z0-9]+/gi, "-")}` }, tag),
      h("ul", {}, byTag.get(tag).map(([m, p]) => h("li", {},
        h("a", { href: `#${opId(m, p)}` }, h("span", { class: `method m-${m}` }, m.toUpperCase()), " ", p))))))));
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

main();

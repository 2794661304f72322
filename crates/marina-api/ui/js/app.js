// The console: sign-in (the token is kept in sessionStorage for this browser
// session only), the hash router, and the layout.

import { ApiError, get, setToken, token } from "./api.js";
import { banner, field, h } from "./dom.js";
import { clustersPage } from "./pages/clusters.js";
import { clusterPage } from "./pages/cluster.js";
import { groupsPage } from "./pages/groups.js";
import { tokensPage } from "./pages/tokens.js";

const main = document.getElementById("main");
let leave = () => {};

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signedIn(tenant) {
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  document.getElementById("tenant").textContent = `Tenant ${tenant.name}`;
}

function signInPage(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const form = h("form", { class: "card signin", id: "signin" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste a Marina API token (marina token create …). It is kept for this browser tab's session only."),
    field("API token", input),
    error,
    h("div", { class: "dialog-actions" }, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    try {
      await get("/v1/tenants/current");
      route();
    } catch (err) {
      setToken(null);
      error.textContent = err.status === 401 ? "This token is unknown or revoked." : err.message;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

async function route() {
  leave();
  leave = () => {};
  banner(null);
  if (!token()) {
    signInPage();
    return;
  }
  let tenant;
  try {
    tenant = await get("/v1/tenants/current");
  } catch (e) {
    setToken(null);
    signInPage(e instanceof ApiError && e.status === 401 ? "Your token is no longer valid; sign in again." : e.message);
    return;
  }
  signedIn(tenant);
  const hash = location.hash || "#/clusters";
  const [, page, id] = hash.split("/");
  const refresh = () => route();
  try {
    if (page === "clusters" && id) leave = await clusterPage(main, decodeURIComponent(id), navigate);
    else if (page === "tokens") leave = await tokensPage(main, refresh);
    else if (page === "security-groups") leave = await groupsPage(main, refresh);
    else leave = await clustersPage(main, refresh);
  } catch (e) {
    main.replaceChildren(h("h1", {}, "Something went wrong"));
    banner(e.message);
  }
  // After a navigation the focus goes to the page, unless the user already
  // put it on something in the page while it was still loading.
  if (!main.contains(document.activeElement)) main.focus();
}

document.getElementById("signout").addEventListener("click", () => {
  setToken(null);
  leave();
  leave = () => {};
  location.hash = "";
  signInPage("Signed out.");
});
window.addEventListener("hashchange", route);
route();

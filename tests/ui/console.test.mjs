// Browser tests of the console in headless Debian Chromium, driven by
// playwright-core. Run by crates/marina/tests/console.rs against a real
// `marina serve`: MARINA_URL, MARINA_TOKEN (admin), MARINA_READ_TOKEN (read
// only), SCREENSHOTS (a directory). Each scenario saves a screenshot and
// fails on any browser console error or page error.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const url = process.env.MARINA_URL;
const adminToken = process.env.MARINA_TOKEN;
const readToken = process.env.MARINA_READ_TOKEN;
const shots = process.env.SCREENSHOTS || "screenshots";
const only = process.env.SCENARIOS ? process.env.SCENARIOS.split(",") : null;
mkdirSync(shots, { recursive: true });

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function newPage(browser, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`page: ${e.message}`));
  page.setDefaultTimeout(30000);
  return { context, page, errors };
}

async function signIn(page, token) {
  await page.goto(`${url}/ui`);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Clusters" }).waitFor();
}

// Waits until the cluster page shows the cluster `active` (no operation
// running, every node as intended).
async function idle(page) {
  await page.locator("h1 .badge", { hasText: /^active$/ }).waitFor({ timeout: 90000 });
}

// Waits for the action's operation (`type`) in the progress panel to end and
// fails with the panel's text unless it succeeded.
async function watched(page, type, box = "#progress") {
  const started = page.locator(`${box} strong`, { hasText: type });
  const refused = page.locator(`${box} .error`);
  await started.or(refused).first().waitFor();
  if (await refused.count()) throw new Error(`${type} refused: ${await refused.first().textContent()}`);
  // The operation's own badge comes first; the steps' follow.
  await page.waitForFunction((sel) => {
    const b = document.querySelector(`${sel} .badge`);
    return b && /^(succeeded|failed)$/.test(b.textContent);
  }, box, { timeout: 120000 });
  const status = await page.locator(`${box} .badge`).first().textContent();
  if (status !== "succeeded") throw new Error(`${type} ${status}: ${await page.locator(box).textContent()}`);
}

const scenarios = {
  async api_reference_tries_a_call({ page }) {
    // Linked from the console; renders the OpenAPI document under the same CSP.
    await page.goto(`${url}/ui`);
    await page.getByRole("link", { name: "API reference" }).click();
    await page.waitForURL(/\/docs$/);
    await page.getByRole("heading", { name: "clusters", exact: true }).waitFor();
    const list = page.locator("#get-v1-clusters");
    await list.getByText("Try it").click();
    await list.getByRole("button", { name: "Send" }).click();
    await list.locator(".response", { hasText: "HTTP 401" }).waitFor();
    await page.locator("#token").fill(adminToken);
    await page.getByRole("button", { name: "Use token" }).click();
    await list.getByRole("button", { name: "Send" }).click();
    await list.locator(".response", { hasText: "HTTP 200" }).waitFor();
    check((await list.locator(".response").textContent()).includes('"object": "list"'), "no list in the answer");
    // A body is prefilled from the schema; a path parameter is asked for.
    const create = page.locator("#post-v1-clusters");
    await create.getByText("Try it").click();
    check((await create.locator("textarea").inputValue()).includes('"name"'), "the create body has no name");
    const one = page.locator("#get-v1-clusters-cluster-id-");
    await one.getByText("Try it").click();
    await one.getByLabel("cluster_id (path)").fill("cl_nope");
    await one.getByRole("button", { name: "Send" }).click();
    await one.locator(".response", { hasText: "HTTP 404" }).waitFor();
    check(!page.url().includes(adminToken), "the token is in the URL");
    await page.screenshot({ path: join(shots, "api-reference.png") });
  },
  async sign_in_and_out({ page }) {
    await page.goto(`${url}/ui`);
    // The label is tied to its input; a wrong token says so and stores nothing.
    await page.getByLabel("API token").fill("mrn_not_a_token");
    await page.keyboard.press("Enter");
    await page.getByText("This token is unknown or revoked.").waitFor();
    check((await page.evaluate(() => sessionStorage.getItem("marina.token"))) === null, "a refused token was kept");
    await signIn(page, adminToken);
    await page.getByText(/^Tenant /).waitFor();
    check(!page.url().includes(adminToken), "the token is in the URL");
    check((await page.evaluate(() => localStorage.length)) === 0, "something was put in localStorage");
    await page.screenshot({ path: join(shots, "signed-in.png") });
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    check((await page.evaluate(() => sessionStorage.getItem("marina.token"))) === null, "sign-out kept the token");
  },

  async create_cluster_from_the_form({ page }) {
    await signIn(page, adminToken);
    await page.getByRole("button", { name: "Create cluster" }).click();
    // The dialog takes the focus; Escape closes it; it opens again.
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    check(await page.evaluate(() => document.activeElement && document.activeElement.name === "name"), "the form's first field has no focus");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await page.getByRole("button", { name: "Create cluster" }).click();
    await page.getByLabel(/^Name/).fill("web");
    await page.getByLabel("Node size").selectOption("xsmall");
    await page.getByLabel(/^Nodes/).fill("3");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.locator("#admin-password").waitFor();
    check((await page.locator("#admin-password").textContent()).length >= 16, "no admin password shown");
    await watched(page, "create_cluster", "#op-progress");
    await page.screenshot({ path: join(shots, "cluster-created.png") });
    await page.locator("#close-created").click();
    const row = page.locator('tr[data-cluster="web"]');
    await row.locator(".badge", { hasText: "active" }).waitFor({ timeout: 60000 });
    check((await row.locator("code").textContent()).startsWith("mariadb -h "), "no connection string");
    await page.screenshot({ path: join(shots, "clusters.png") });
  },

  async switchover_redraws_the_topology({ page }) {
    await signIn(page, adminToken);
    await page.getByRole("link", { name: "web" }).click();
    const primary = page.locator('#topology g[data-role="primary"]');
    await primary.waitFor();
    check((await page.locator('#topology g[data-role="replica"]').count()) === 2, "not two replicas drawn");
    const before = await primary.getAttribute("data-node");
    // The live refresh (every 2 s) never takes the keyboard focus away.
    const reboot = page.getByRole("button", { name: /^Reboot nd_/ }).first();
    const label = await reboot.getAttribute("aria-label");
    await reboot.focus();
    await page.waitForTimeout(4500);
    check(await page.evaluate((l) => document.activeElement && document.activeElement.getAttribute("aria-label") === l, label),
      "the live refresh took the keyboard focus away");
    await page.getByRole("button", { name: "Switchover" }).click();
    const target = page.getByLabel("New primary");
    const options = await target.locator("option").evaluateAll((os) => os.map((o) => o.value));
    const chosen = options.find((v) => v && v !== before);
    await target.selectOption(chosen);
    await page.getByRole("button", { name: "Switch over" }).click();
    await watched(page, "switchover");
    await page.waitForFunction((id) => {
      const g = document.querySelector('#topology g[data-role="primary"]');
      return g && g.getAttribute("data-node") === id;
    }, chosen, { timeout: 15000 });
    check((await page.locator(`#topology g[data-node="${before}"]`).getAttribute("data-role")) === "replica", "the old primary is not drawn as a replica");
    await page.screenshot({ path: join(shots, "switchover.png") });
    // A forced failover from the console: confirmed, watched, redrawn.
    await idle(page);
    await page.getByRole("button", { name: "Failover" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Fail over" }).click();
    await watched(page, "failover");
    await page.waitForFunction((id) => {
      const g = document.querySelector('#topology g[data-role="primary"]');
      return g && g.getAttribute("data-node") !== id;
    }, chosen, { timeout: 15000 });
  },

  async create_and_revoke_a_token({ page }) {
    await signIn(page, adminToken);
    await page.getByRole("link", { name: "Tokens" }).click();
    await page.getByRole("heading", { name: "Tokens" }).waitFor();
    await page.getByRole("button", { name: "Create token" }).click();
    await page.getByLabel(/^Name/).fill("ci-bot");
    await page.getByLabel("write").check();
    await page.getByRole("button", { name: "Create", exact: true }).click();
    const secret = await page.locator("#token-secret").textContent();
    check(secret.startsWith("mrn_"), `no secret shown: ${secret}`);
    await page.screenshot({ path: join(shots, "token-created.png") });
    await page.getByRole("button", { name: "Done" }).click();
    const row = page.locator('tr[data-token="ci-bot"]');
    await row.waitFor();
    check(!(await page.content()).includes(secret), "the secret is shown again");
    await row.getByRole("button", { name: "Revoke ci-bot" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke" }).click();
    await row.waitFor({ state: "detached" });
    // The revoked secret no longer signs in.
    const status = await page.evaluate(async (t) => (await fetch("/v1/tenants/current", { headers: { Authorization: `Bearer ${t}` } })).status, secret);
    check(status === 401, `a revoked token still works (${status})`);
  },

  async a_read_token_is_told_what_it_lacks({ page }) {
    await signIn(page, readToken);
    await page.getByRole("button", { name: "Create cluster" }).click();
    await page.getByLabel(/^Name/).fill("nope");
    await page.getByLabel(/^Nodes/).fill("1");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.getByRole("dialog").getByText(/lacks the scope/).waitFor();
    await page.screenshot({ path: join(shots, "scope-refused.png") });
  },

  async node_actions_backup_restore_and_charts({ page }) {
    await signIn(page, adminToken);
    await page.getByRole("link", { name: "web" }).click();
    await page.locator('#topology g[data-role="primary"]').waitFor();
    // Add a node, watch it to the end, see it drawn.
    await idle(page);
    await page.getByRole("button", { name: "Add node" }).click();
    await page.getByLabel("Node size").selectOption("xsmall");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await watched(page, "add_node");
    await page.waitForFunction(() => document.querySelectorAll('#topology g[data-role="replica"]').length === 3, null, { timeout: 15000 });
    // Remove a replica (the last one drawn).
    await idle(page);
    const replica = await page.locator('#topology g[data-role="replica"]').last().getAttribute("data-node");
    await page.getByRole("button", { name: `Remove ${replica}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
    await watched(page, "remove_node");
    await page.waitForFunction((id) => !document.querySelector(`#topology g[data-node="${id}"]`), replica, { timeout: 15000 });
    // Resize a replica, then reboot it.
    await idle(page);
    const other = await page.locator('#topology g[data-role="replica"]').first().getAttribute("data-node");
    await page.getByRole("button", { name: `Resize ${other}` }).click();
    await page.getByLabel("New size").selectOption("small");
    await page.getByRole("dialog").getByRole("button", { name: "Resize" }).click();
    await watched(page, "resize_node");
    await page.locator(`tr[data-node="${other}"] td`, { hasText: "small" }).waitFor({ timeout: 15000 });
    await idle(page);
    await page.getByRole("button", { name: `Reboot ${other}` }).click();
    await watched(page, "reboot_node");
    // Backup now, then restore it into a new cluster.
    await idle(page);
    await page.getByRole("button", { name: "Backup now" }).click();
    await watched(page, "backup");
    const restore = page.getByRole("button", { name: "Restore into new cluster" }).first();
    await restore.waitFor({ timeout: 15000 });
    await restore.click();
    await page.getByLabel("New cluster name").fill("web-copy");
    await page.getByRole("button", { name: "Restore", exact: true }).click();
    await page.locator("#progress .secret code").waitFor();
    await watched(page, "restore_cluster");
    // Charts: the monitor's history has points by now.
    await page.waitForFunction(() => document.querySelectorAll(".chart svg path").length > 0, null, { timeout: 20000 });
    await page.screenshot({ path: join(shots, "cluster-detail.png"), fullPage: true });
  },

  async delete_needs_the_typed_name_and_groups_take_rules({ page }) {
    await signIn(page, adminToken);
    await page.locator('tr[data-cluster="web-copy"] .badge', { hasText: "active" }).waitFor({ timeout: 60000 });
    await page.getByRole("link", { name: "web-copy" }).click();
    await page.getByRole("button", { name: "Delete" }).click();
    const confirm = page.getByLabel(/^Type the cluster name/);
    await confirm.fill("web");
    await page.getByRole("button", { name: "Delete cluster" }).click();
    await page.getByRole("dialog").getByText("Type web-copy exactly to delete it.").waitFor();
    await confirm.fill("web-copy");
    await page.getByRole("button", { name: "Delete cluster" }).click();
    await page.getByRole("heading", { name: "Clusters" }).waitFor({ timeout: 120000 });
    await page.locator('tr[data-cluster="web-copy"]').waitFor({ state: "detached", timeout: 60000 });
    // Security groups and rules.
    await page.getByRole("link", { name: "Security groups" }).click();
    await page.getByRole("button", { name: "Create group" }).click();
    await page.getByLabel("Name").fill("office");
    await page.getByLabel("Description").fill("the office network");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    const group = page.locator('section[data-group="office"]');
    await group.waitFor();
    await group.getByRole("button", { name: "Add rule" }).click();
    await page.getByLabel("Source network (CIDR)").fill("10.1.0.0/16");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await group.getByText("10.1.0.0/16").waitFor();
    // A bad CIDR is refused with the API's message and nothing is added.
    await group.getByRole("button", { name: "Add rule" }).click();
    await page.getByLabel("Source network (CIDR)").fill("10.1.0.1/16");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByRole("dialog").locator(".error").filter({ hasText: /host bits|cidr/i }).waitFor();
    await page.keyboard.press("Escape");
    await page.screenshot({ path: join(shots, "security-groups.png") });
  },

  async readable_on_a_narrow_window({ page }) {
    await signIn(page, adminToken);
    await page.getByRole("link", { name: "web" }).click();
    await page.locator('#topology g[data-role="primary"]').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `the page is ${overflow}px wider than the window`);
    await page.screenshot({ path: join(shots, "narrow.png"), fullPage: true });
  },
};

const narrow = new Set(["readable_on_a_narrow_window"]);

// The HTTP refusals a scenario provokes on purpose (Chromium logs every 4xx
// answer as "Failed to load resource"); anything else logged is an error.
const provoked = {
  api_reference_tries_a_call: [401, 404],
  sign_in_and_out: [401],
  create_and_revoke_a_token: [401],
  a_read_token_is_told_what_it_lacks: [403],
  delete_needs_the_typed_name_and_groups_take_rules: [400],
};

function unexpected(name, errors) {
  const allowed = provoked[name] || [];
  return errors.filter((e) => {
    const m = e.match(/Failed to load resource: the server responded with a status of (\d+)/);
    return !(m && allowed.includes(Number(m[1])));
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
let failed = 0;
for (const [name, run] of Object.entries(scenarios)) {
  if (only && !only.includes(name)) continue;
  const started = Date.now();
  const ctx = await newPage(browser, narrow.has(name) ? { width: 420, height: 800 } : undefined);
  try {
    await run(ctx);
    const errors = unexpected(name, ctx.errors);
    check(errors.length === 0, `browser errors: ${errors.join(" | ")}`);
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed++;
    await ctx.page.screenshot({ path: join(shots, `FAILED-${name}.png`) }).catch(() => {});
    console.log(`FAIL ${name}: ${e.message}\n${ctx.errors.join("\n")}`);
  }
  await ctx.context.close();
}
await browser.close();
process.exit(failed ? 1 : 0);

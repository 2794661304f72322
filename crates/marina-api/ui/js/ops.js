// An operation's progress to its end: steps with their statuses, a progress
// bar, and the error's message if it fails. Polls every second.

import { get } from "./api.js";
import { h, badge } from "./dom.js";

export function stepsList(op) {
  return h("ol", { class: "steps" },
    op.steps.map((s) => h("li", {}, badge(s.status), h("span", { class: "mono" }, s.name))));
}

// Renders the operation into `box` until it ends; resolves with it.
export async function watch(opId, box, signal) {
  for (;;) {
    const op = await get(`/v1/operations/${encodeURIComponent(opId)}`);
    const done = op.steps.filter((s) => s.status === "succeeded" || s.status === "skipped").length;
    box.replaceChildren(
      h("div", { class: "row" },
        h("strong", {}, `Operation ${op.type}`), badge(op.status), h("span", { class: "mono muted" }, op.id)),
      h("progress", { max: String(op.steps.length || 1), value: String(done), "aria-label": `${op.type} progress` }),
      stepsList(op),
      ...(op.error ? [h("p", { class: "error", role: "alert" }, `Failed: ${op.error.message}`)] : []));
    if (op.status === "succeeded" || op.status === "failed") return op;
    if (signal && signal.aborted) return op;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// Starts a request that answers `{operation}` and shows its progress in a
// dialog-less panel `box`.
export async function runAndWatch(start, box) {
  box.replaceChildren(h("p", { class: "muted" }, "Starting…"));
  try {
    const res = await start();
    const op = res.operation || res;
    return await watch(op.id, box);
  } catch (e) {
    box.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    return null;
  }
}

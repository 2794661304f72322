// Small DOM helpers: an element builder (text only, never HTML from data),
// the banner, modal dialogs with keyboard support (<dialog>), copy buttons.

// The pattern of Marina's names (the `-` escaped for the `v` flag browsers use).
export const NAME_PATTERN = "[a-z][a-z0-9\\-]{0,62}";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function badge(status) {
  return h("span", { class: `badge s-${status}` }, status);
}

export function banner(message, kind = "error") {
  const b = document.getElementById("banner");
  if (!message) {
    b.hidden = true;
    b.textContent = "";
    return;
  }
  b.className = kind === "info" ? "banner info" : "banner";
  b.textContent = message;
  b.hidden = false;
}

// Shows `content` in a modal dialog; resolves when it closes.
export function dialog(title, build) {
  return new Promise((resolve) => {
    const d = h("dialog", { "aria-labelledby": "dlg-title" });
    const close = (v) => {
      d.close();
      d.remove();
      resolve(v);
    };
    d.append(h("h2", { id: "dlg-title" }, title), build(close));
    d.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(null);
    });
    document.body.append(d);
    d.showModal();
    const first = d.querySelector("input, select, button");
    if (first) first.focus();
  });
}

// A form dialog: `fields` builds the inputs; `submit(form)` runs on submit and
// may throw (its message is shown in the dialog and nothing closes).
export function formDialog(title, fields, submitLabel, submit, danger = false) {
  return dialog(title, (close) => {
    const error = h("p", { class: "error", role: "alert" });
    const form = h("form", {},
      fields(),
      error,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "secondary", onclick: () => close(null) }, "Cancel"),
        h("button", { type: "submit", class: danger ? "danger" : "" }, submitLabel)));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      const buttons = form.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        close(await submit(form));
      } catch (err) {
        error.textContent = err.message;
        buttons.forEach((b) => (b.disabled = false));
      }
    });
    return form;
  });
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", {}, h("label", { for: id }, label), input);
}

export function copyButton(text, label = "Copy") {
  const b = h("button", { type: "button", class: "secondary", "aria-label": `${label}: ${text}` }, label);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      b.textContent = "Select and copy";
    }
    setTimeout(() => (b.textContent = label), 1500);
  });
  return b;
}

export function fmtTime(s) {
  if (!s) return "—";
  return new Date(s).toLocaleString();
}

// Re-renders a live part of a page without pulling the keyboard focus away:
// nothing happens when `data` is what was drawn last; otherwise `render()`
// runs and the focused control (matched by id, aria-label or text) gets the
// focus back.
export function liveRender(holder, data, render) {
  const key = JSON.stringify(data);
  if (holder.dataset.drawn === key) return;
  holder.dataset.drawn = key;
  const a = document.activeElement;
  const name = (e) => e.id || e.getAttribute("aria-label") || e.textContent;
  const focused = a && a !== document.body && holder.contains(a) ? name(a) : null;
  render();
  if (focused) {
    const again = [...holder.querySelectorAll("button, a, input, select")].find((e) => name(e) === focused);
    if (again) again.focus();
  }
}

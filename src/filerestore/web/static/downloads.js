// Downloads: the API needs a Bearer header, so a plain link cannot fetch the bytes. The page
// streams the response (showing progress), then hands the finished blob to the browser.

import { h, clear } from "./dom.js";
import { bytes } from "./format.js";
import { icon } from "./icons.js";
import { messageOf } from "./ui.js";

const items = [];
const FOLD_BYTES = 16 * 1024 * 1024;

function panel() {
  return document.getElementById("downloads");
}

function render() {
  const el = clear(panel());
  el.hidden = items.length === 0;
  if (!items.length) return;
  el.className = "downloads panel";
  el.append(
    h(
      "div",
      { class: "dl-head" },
      h("span", {}, "Downloads"),
      h("button", {
        type: "button",
        class: "btn btn-sm",
        onclick: () => {
          for (let i = items.length - 1; i >= 0; i -= 1) if (items[i].state !== "running") items.splice(i, 1);
          render();
        },
      }, "Clear finished"),
    ),
  );
  for (const item of items) el.append(item.el);
}

// RFC 6266 / 5987: prefer filename*, fall back to the quoted ASCII filename.
export function filenameFrom(disposition, fallback) {
  if (!disposition) return fallback;
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[2].trim());
    } catch {
      /* fall through to the plain name */
    }
  }
  const plain = /filename\s*=\s*"((?:[^"\\]|\\.)*)"|filename\s*=\s*([^;]+)/i.exec(disposition);
  if (plain) return (plain[1] ?? plain[2]).replace(/\\(.)/g, "$1").trim();
  return fallback;
}

function itemView(item) {
  const bar = h("i");
  const status = h("span", { class: "muted" }, "starting…");
  const cancel = h("button", { type: "button", class: "btn btn-icon", "aria-label": `Cancel ${item.name}`, html: icon("close"), onclick: () => item.abort.abort() });
  const el = h("div", { class: "dl" }, h("div", { class: "top" }, h("span", { class: "n", title: item.name }, item.name), status, cancel), h("div", { class: "bar" }, bar));
  return { el, bar, status, cancel };
}

// start(signal) must return a fetch Response (from api.download / api.downloadDirectory).
export async function download(name, start) {
  const item = { name, state: "running", abort: new AbortController() };
  const view = itemView(item);
  item.el = view.el;
  items.unshift(item);
  while (items.length > 6) items.pop();
  render();
  try {
    const res = await start(item.abort.signal);
    const filename = filenameFrom(res.headers.get("Content-Disposition"), name);
    view.el.querySelector(".n").textContent = filename;
    const total = Number(res.headers.get("Content-Length")) || 0;
    if (!total) view.bar.parentElement.classList.add("indeterminate");
    const reader = res.body.getReader();
    // Chunks are folded into Blob parts as they come: the browser keeps large blobs out of
    // the script heap (Chromium pages them to disk), so a big file does not pile up in it.
    const parts = [];
    let chunks = [];
    let pending = 0;
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      pending += value.length;
      received += value.length;
      if (pending >= FOLD_BYTES) {
        parts.push(new Blob(chunks));
        chunks = [];
        pending = 0;
      }
      view.status.textContent = total ? `${bytes(received)} of ${bytes(total)}` : bytes(received);
      if (total) view.bar.style.width = `${Math.min(100, (received / total) * 100)}%`;
    }
    const blob = new Blob([...parts, ...chunks], { type: res.headers.get("Content-Type") || "application/octet-stream" });
    const href = URL.createObjectURL(blob);
    const a = h("a", { href, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    item.state = "done";
    setTimeout(() => {
      const at = items.indexOf(item);
      if (at >= 0) {
        items.splice(at, 1);
        render();
      }
    }, 8000);
    view.el.classList.add("done");
    view.bar.parentElement.classList.remove("indeterminate");
    view.bar.style.width = "100%";
    view.status.textContent = `${bytes(received)} · saved`;
  } catch (err) {
    item.state = "failed";
    view.el.classList.add("failed");
    view.bar.parentElement.classList.remove("indeterminate");
    const m = messageOf(err);
    view.status.textContent = err && err.name === "AbortError" ? "cancelled" : "failed";
    if (!(err && err.name === "AbortError")) {
      view.el.append(h("div", { class: "alert alert-error", role: "alert", style: "margin-top:4px" }, `${m.text}${m.code ? ` (${m.code})` : ""}`));
    }
  } finally {
    view.cancel.remove();
  }
}

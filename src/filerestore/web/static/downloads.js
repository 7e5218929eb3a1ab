// Downloads. The API needs a Bearer header, which a plain link cannot carry. Two ways:
// - streamed: the page's service worker (sw.js) is given the token for one URL and adds the
//   header to that one request, so the browser's own download manager receives the stream
//   as it comes (any size, nothing held by the page). What the API would refuse is asked
//   first (file-info of the path: session, token, path), so it is shown on the page; an
//   archive's paths were all counted in its dialog already.
// - buffered (no service worker: old browser, plain http on a non-local host, or blocked):
//   the page reads the response itself (with progress), then saves the finished blob.

import { ApiError, request, token, url } from "./api.js";
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
      h(
        "button",
        {
          type: "button",
          class: "btn btn-sm",
          onclick: () => {
            for (let i = items.length - 1; i >= 0; i -= 1)
              if (items[i].state !== "running") items.splice(i, 1);
            render();
          },
        },
        "Clear finished",
      ),
    ),
  );
  for (const item of items) el.append(item.el);
}

// RFC 6266 / 5987: prefer filename*, fall back to the quoted ASCII filename.
function filenameFrom(disposition, fallback) {
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
  const cancel = h("button", {
    type: "button",
    class: "btn btn-icon",
    "aria-label": `Cancel ${item.name}`,
    html: icon("close"),
    onclick: () => item.abort.abort(),
  });
  const el = h(
    "div",
    { class: "dl" },
    h(
      "div",
      { class: "top" },
      h("span", { class: "n", title: item.name }, item.name),
      status,
      cancel,
    ),
    h("div", { class: "bar" }, bar),
  );
  return { el, bar, status, cancel };
}

function itemFor(name) {
  const item = { name, state: "running", abort: new AbortController() };
  Object.assign(item, itemView(item));
  items.unshift(item);
  while (items.length > 6) items.pop();
  render();
  return item;
}

function finish(item, text) {
  item.state = "done";
  item.el.classList.add("done");
  item.bar.parentElement.classList.remove("indeterminate");
  item.bar.style.width = "100%";
  item.status.textContent = text;
  item.cancel.remove();
  setTimeout(() => {
    const at = items.indexOf(item);
    if (at >= 0) {
      items.splice(at, 1);
      render();
    }
  }, 8000);
}

function fail(item, err) {
  item.state = "failed";
  item.el.classList.add("failed");
  item.bar.parentElement.classList.remove("indeterminate");
  item.cancel.remove();
  const aborted = err && err.name === "AbortError";
  item.status.textContent = aborted ? "cancelled" : "failed";
  if (!aborted) {
    const m = messageOf(err);
    item.el.append(
      h(
        "div",
        { class: "alert alert-error", role: "alert", style: "margin-top:4px" },
        `${m.text}${m.code ? ` (${m.code})` : ""}`,
      ),
    );
  }
}

// The session, the token and the (first) path are still good: what a download would fail on
// before its first byte, asked without starting one (a download is an audit event).
async function preflight(spec, signal) {
  await request("GET", spec.check.path, { query: spec.check.query, signal });
}

// Gives the service worker the token for exactly this URL (null when there is no worker);
// what it then reports about the download goes to onEvent (see sw.js).
async function grant(href, onEvent) {
  const worker = navigator.serviceWorker?.controller;
  if (!worker || !token.get()) return null;
  const nonce = crypto.randomUUID();
  const channel = new MessageChannel();
  let ack = null;
  const acked = new Promise((resolve) => {
    ack = resolve;
    setTimeout(() => resolve(false), 2000);
  });
  channel.port1.onmessage = (ev) => {
    const d = ev.data || {};
    if ("ok" in d) ack(Boolean(d.ok));
    else onEvent(d);
  };
  worker.postMessage({ type: "grant", nonce, token: token.get(), url: href }, [channel.port2]);
  return (await acked) ? nonce : null;
}

// "3.1 MiB of 12 MiB · 4 s left" from what has passed since the start.
function progressText(received, total, started) {
  if (!total) return bytes(received);
  const seconds = (performance.now() - started) / 1000;
  const rate = seconds > 0.5 ? received / seconds : 0;
  const left = rate ? Math.ceil((total - received) / rate) : null;
  const eta =
    left === null ? "" : ` · ${left < 60 ? `${left} s` : `${Math.ceil(left / 60)} min`} left`;
  return `${bytes(received)} of ${bytes(total)}${eta}`;
}

function showProgress(item, received, total, started) {
  item.status.textContent = progressText(received, total, started);
  if (total) item.bar.style.width = `${Math.min(100, (received / total) * 100)}%`;
}

async function streamed(item, spec) {
  const href = url(spec.path, spec.query);
  const started = performance.now();
  const onEvent = (d) => {
    if (item.state !== "running") return;
    if (d.type === "failed") fail(item, new ApiError(d.status, d.code, d.message));
    else if (d.type === "started") {
      if (!d.total) item.bar.parentElement.classList.add("indeterminate");
      showProgress(item, 0, d.total, started);
    } else if (d.type === "progress") showProgress(item, d.received, d.total, started);
    else if (d.type === "done")
      finish(item, `${bytes(d.received)} · saved to the browser's downloads`);
  };
  const nonce = await grant(href, onEvent);
  if (!nonce) return false;
  await preflight(spec, item.abort.signal);
  // A hidden frame: the response is an attachment, so the browser downloads it; anything
  // else (a refusal, an expired grant) stays invisible instead of replacing the page, and
  // the worker's report shows it here.
  const frame = h("iframe", {
    src: `${href}${href.includes("?") ? "&" : "?"}fr-download=${nonce}`,
    hidden: true,
    title: "download",
  });
  document.body.append(frame);
  setTimeout(() => frame.remove(), 120000);
  item.status.textContent = "waiting for the server…";
  item.cancel.remove(); // the browser's own download manager can cancel it from here on
  return true;
}

async function buffered(item, spec) {
  const started = performance.now();
  const res = await request("GET", spec.path, {
    query: spec.query,
    raw: true,
    signal: item.abort.signal,
  });
  const filename = filenameFrom(res.headers.get("Content-Disposition"), item.name);
  item.el.querySelector(".n").textContent = filename;
  const total = Number(res.headers.get("Content-Length")) || 0;
  if (!total) item.bar.parentElement.classList.add("indeterminate");
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
    showProgress(item, received, total, started);
  }
  const blob = new Blob([...parts, ...chunks], {
    type: res.headers.get("Content-Type") || "application/octet-stream",
  });
  const href = URL.createObjectURL(blob);
  const a = h("a", { href, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60000);
  finish(item, `${bytes(received)} · saved`);
}

// spec: {path, query, single} from api.download / api.downloadDirectory.
export async function download(name, spec) {
  const item = itemFor(name);
  try {
    if (!(await streamed(item, spec))) await buffered(item, spec);
  } catch (err) {
    fail(item, err instanceof Error ? err : new ApiError(0, "client_error", String(err)));
  }
}

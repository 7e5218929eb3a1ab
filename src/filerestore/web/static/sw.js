// The page's service worker: streams downloads to the browser's download manager.
//
// The API wants an Authorization header, which a navigation cannot carry. The page hands
// this worker the token for exactly one URL under a random one-time nonce (a "grant"); when
// that URL is requested with `fr-download=<nonce>` appended, the worker strips the marker,
// repeats the request with the header and passes the streamed response on. Nothing else is
// intercepted; the token is held in memory for at most a minute and never stored.
//
// The page keeps the grant's message port: the worker tells it how the download went (the
// answer's status and, for a refusal, the API's error), how many bytes have passed, and
// when the last one has: a failed download shows as a failure on the page, with its reason,
// and a running one with its size and progress.

const GRANT_MS = 60000;
const MARKER = /[?&]fr-download=([0-9a-f-]{36})$/;
const KEEP_HEADERS = [
  "Content-Type",
  "Content-Length",
  "Content-Disposition",
  "ETag",
  "Last-Modified",
];
const grants = new Map();

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (ev) => ev.waitUntil(self.clients.claim()));

self.addEventListener("message", (ev) => {
  const d = ev.data || {};
  if (
    d.type !== "grant" ||
    typeof d.nonce !== "string" ||
    typeof d.token !== "string" ||
    typeof d.url !== "string"
  )
    return;
  const now = Date.now();
  for (const [nonce, g] of grants) if (g.until < now) grants.delete(nonce);
  const port = ev.ports[0] || null;
  grants.set(d.nonce, { token: d.token, url: d.url, until: now + GRANT_MS, port });
  if (port) port.postMessage({ ok: true });
});

self.addEventListener("fetch", (ev) => {
  if (ev.request.method !== "GET") return;
  const href = ev.request.url;
  const m = MARKER.exec(href);
  if (!m || new URL(href).origin !== self.location.origin) return;
  ev.respondWith(forward(href.slice(0, m.index), m[1]));
});

async function forward(target, nonce) {
  const grant = grants.get(nonce);
  grants.delete(nonce);
  const wanted = new URL(target);
  if (!grant || grant.until < Date.now() || grant.url !== wanted.pathname + wanted.search) {
    return new Response("This download link has expired: start the download again from the page.", {
      status: 410,
      headers: { "Content-Type": "text/plain; charset=utf-8" },
    });
  }
  const report = (msg) => {
    if (grant.port) grant.port.postMessage(msg);
  };
  let res;
  try {
    res = await fetch(target, {
      headers: { Authorization: `Bearer ${grant.token}` },
      cache: "no-store",
    });
  } catch (err) {
    report({
      type: "failed",
      status: 0,
      code: "network_error",
      message: String(err?.message || err),
    });
    throw err;
  }
  const headers = new Headers();
  for (const name of KEEP_HEADERS) {
    const value = res.headers.get(name);
    if (value) headers.set(name, value);
  }
  if (!res.ok) {
    const text = await res.text();
    let error = { code: `http_${res.status}`, message: text.slice(0, 500) || res.statusText };
    try {
      const body = JSON.parse(text);
      if (body?.error) error = { code: body.error.code, message: body.error.message };
    } catch {
      /* not the API's JSON: the text itself */
    }
    report({ type: "failed", status: res.status, ...error });
    headers.set("Content-Type", "text/plain; charset=utf-8");
    return new Response(text, { status: res.status, statusText: res.statusText, headers });
  }
  const total = Number(res.headers.get("Content-Length")) || 0;
  report({ type: "started", total });
  let received = 0;
  let last = 0;
  const counted = new TransformStream({
    transform(chunk, controller) {
      received += chunk.byteLength;
      const now = Date.now();
      if (now - last >= 250) {
        last = now;
        report({ type: "progress", received, total });
      }
      controller.enqueue(chunk);
    },
    flush() {
      report({ type: "done", received, total });
    },
  });
  res.body.pipeTo(counted.writable).catch((err) => {
    report({
      type: "failed",
      status: 0,
      code: "stream_broken",
      message: `the download stopped after ${received} bytes: ${String(err?.message || err)}`,
    });
  });
  return new Response(counted.readable, {
    status: res.status,
    statusText: res.statusText,
    headers,
  });
}

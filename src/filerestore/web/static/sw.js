// The page's service worker: streams downloads to the browser's download manager.
//
// The API wants an Authorization header, which a navigation cannot carry. The page hands
// this worker the token for exactly one URL under a random one-time nonce (a "grant"); when
// that URL is requested with `fr-download=<nonce>` appended, the worker strips the marker,
// repeats the request with the header and passes the streamed response on. Nothing else is
// intercepted; the token is held in memory for at most a minute and never stored.

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
  grants.set(d.nonce, { token: d.token, url: d.url, until: now + GRANT_MS });
  if (ev.ports[0]) ev.ports[0].postMessage({ ok: true });
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
  const res = await fetch(target, {
    headers: { Authorization: `Bearer ${grant.token}` },
    cache: "no-store",
  });
  const headers = new Headers();
  for (const name of KEEP_HEADERS) {
    const value = res.headers.get(name);
    if (value) headers.set(name, value);
  }
  if (!res.ok) headers.set("Content-Type", "text/plain; charset=utf-8");
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

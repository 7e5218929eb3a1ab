// The page's only way to the server: the public REST API under /api/v1, with a Bearer token.
// Every record it returns is mapped by model.js, so no other module reads the API's fields.

import {
  backupDetailOf,
  backupOf,
  fileInfoOf,
  historyOf,
  jobOf,
  mountOf,
  pageOf,
  repositoryOf,
  resourcesOf,
  searchPageOf,
  targetOf,
  totalsOf,
} from "./model.js";

const BASE = "/api/v1";
const TOKEN_KEY = "filerestore.token";

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }

  // One line a person can act on, with the code kept for a support ticket.
  get readable() {
    const where = this.status ? `HTTP ${this.status}` : "no response";
    return `${this.message} (${this.code || "error"}, ${where})`;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let unauthorizedHandler = null;
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

// Guest paths travel as the API's `path_query` (their raw bytes percent-encoded, so names
// that are not UTF-8 survive): such values are wrapped with encoded() and sent as they are.
export const encoded = (value) => ({ encoded: value });

export function url(path, query) {
  const parts = [];
  for (const [key, value] of Object.entries(query || {})) {
    if (value === null || value === undefined || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      const text =
        v && typeof v === "object" && "encoded" in v ? v.encoded : encodeURIComponent(String(v));
      parts.push(`${encodeURIComponent(key)}=${text}`);
    }
  }
  return `${BASE}${path}${parts.length ? `?${parts.join("&")}` : ""}`;
}

const STATUS_TEXT = {
  400: "The request was refused",
  401: "The API token was not accepted",
  403: "This token may not do that",
  404: "Not found",
  409: "Conflict",
  413: "Too large",
  416: "Range not satisfiable",
  429: "Too many requests",
  500: "The server failed (a bug: please report it)",
  502: "Bad gateway",
  503: "The service is unavailable",
  504: "The server took too long",
};

// Turns any error response into an ApiError: the API's {"error": {code, message}} shape,
// FastAPI's {"detail": ...} (validation), or whatever a proxy put in front of us.
async function errorFrom(res) {
  const text = await res.text().catch(() => "");
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const fallback = STATUS_TEXT[res.status] || `Request failed`;
  if (body?.error && typeof body.error === "object") {
    return new ApiError(
      res.status,
      body.error.code || `http_${res.status}`,
      body.error.message || fallback,
      body,
    );
  }
  if (body && body.detail !== undefined) {
    const detail = Array.isArray(body.detail)
      ? body.detail
          .map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`)
          .join("; ")
      : String(typeof body.detail === "object" ? JSON.stringify(body.detail) : body.detail);
    return new ApiError(res.status, `http_${res.status}`, detail || fallback, body);
  }
  const snippet = text && !/^\s*</.test(text) ? `: ${text.slice(0, 200)}` : "";
  return new ApiError(res.status, `http_${res.status}`, `${fallback}${snippet}`, body);
}

export async function request(
  method,
  path,
  { query, body, raw = false, auth, signal, headers: extra } = {},
) {
  const headers = { Accept: raw ? "*/*" : "application/json", ...(extra || {}) };
  const bearer = auth !== undefined ? auth : token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(
      0,
      "network",
      `Cannot reach the filerestore server (${err?.message ? err.message : err})`,
    );
  }
  if (!res.ok) {
    const error = await errorFrom(res);
    if (res.status === 401 && auth === undefined && unauthorizedHandler) unauthorizedHandler(error);
    throw error;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(res.status, "bad_response", "The server sent a response that is not JSON");
  }
}

// The key each list route's response holds its list under (checked against /openapi.json by
// tests/web/test_fields.py).
export const LISTS = {
  "/backups": "backups",
  "/repositories": "repositories",
  "/restore/mounts": "mounts",
  "/restore/targets": "targets",
};

async function list(path, options) {
  return (await request("GET", path, options))[LISTS[path]];
}

export const api = {
  check: (bearer) => list("/restore/mounts", { auth: bearer }),
  backups: async (query) => (await list("/backups", { query })).map(backupOf),
  backup: async (id) => backupDetailOf(await request("GET", `/backups/${encodeURIComponent(id)}`)),
  repositories: async () => (await list("/repositories")).map(repositoryOf),
  mounts: async () => (await list("/restore/mounts")).map(mountOf),
  mount: async (backupId, volume) =>
    mountOf(
      await request("POST", "/restore/mount", {
        body: volume ? { backup_id: backupId, volume } : { backup_id: backupId },
      }),
    ),
  unmount: (id) => request("DELETE", `/restore/${encodeURIComponent(id)}`),
  files: async (id, query, signal) =>
    pageOf(await request("GET", `/restore/${encodeURIComponent(id)}/files`, { query, signal })),
  fileInfo: async (id, pathQ, signal) =>
    fileInfoOf(
      await request("GET", `/restore/${encodeURIComponent(id)}/file-info`, {
        query: { path: encoded(pathQ) },
        signal,
      }),
    ),
  totals: async (id, pathQs) =>
    totalsOf(
      await request("GET", `/restore/${encodeURIComponent(id)}/totals`, {
        query: { path: pathQs.map(encoded) },
      }),
    ),
  resources: async () => resourcesOf(await request("GET", "/restore/resources")),
  targets: async () => (await list("/restore/targets")).map(targetOf),
  // paths as entries' encoded paths (the API's path_query form)
  restoreJob: async (mountId, pathQs, target, destination, policy) =>
    jobOf(
      await request("POST", "/restore/jobs", {
        body: { mount_id: mountId, paths: pathQs, target, destination, policy },
      }),
    ),
  job: async (id) => jobOf(await request("GET", `/restore/jobs/${encodeURIComponent(id)}`)),
  cancelJob: async (id) =>
    jobOf(await request("POST", `/restore/jobs/${encodeURIComponent(id)}/cancel`)),
  search: async (query) => searchPageOf(await request("GET", "/search", { query })),
  // the diff is JSON lines (one per path, then {"totals": ...}): read whole here
  diff: async (oldId, newId) => {
    const res = await request(
      "GET",
      `/backups/${encodeURIComponent(oldId)}/diff/${encodeURIComponent(newId)}`,
      { raw: true },
    );
    return (await res.text())
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  },
  history: async (backupId, pathQ, volume) =>
    historyOf(
      await request("GET", `/backups/${encodeURIComponent(backupId)}/history`, {
        query: { path: encoded(pathQ), volume },
      }),
    ),
  // Downloads are described, not fetched: downloads.js chooses how to fetch them.
  // (`check` is a request that fails the way the download would, without being one.)
  download: (id, pathQ) => ({
    path: `/restore/${encodeURIComponent(id)}/download`,
    query: { path: encoded(pathQ) },
    check: {
      path: `/restore/${encodeURIComponent(id)}/file-info`,
      query: { path: encoded(pathQ) },
    },
  }),
  downloadDirectory: (id, pathQs, format) => ({
    path: `/restore/${encodeURIComponent(id)}/download-directory`,
    query: { path: pathQs.map(encoded), format },
    check: {
      path: `/restore/${encodeURIComponent(id)}/file-info`,
      query: { path: encoded(pathQs[0]) },
    },
  }),
};

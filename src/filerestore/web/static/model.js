// The API's records in the shapes the page uses (field names differ slightly between routes).

import { toDate } from "./format.js";

const first = (obj, ...keys) => {
  for (const key of keys) if (obj && obj[key] !== undefined && obj[key] !== null) return obj[key];
  return null;
};

export function backupOf(b) {
  const repo = first(b, "repository", "repository_name", "repo");
  return {
    id: first(b, "id", "backup_id"),
    vm: first(b, "vm", "vm_name") || "(no VM name)",
    disk: first(b, "disk", "disk_name") || "(no disk name)",
    kind: first(b, "kind", "backup_type", "type") || "full",
    parent: first(b, "parent_backup_id", "parent_id", "parent"),
    size: first(b, "virtual_size", "size"),
    created: toDate(first(b, "created_at", "created", "timestamp")),
    repository: repo && typeof repo === "object" ? first(repo, "name", "id") : repo,
    path: first(b, "path", "relative_path", "file"),
    status: first(b, "status", "state") || "available",
    raw: b,
  };
}

export function volumeOf(v) {
  const fs = first(v, "filesystem_type", "filesystem", "fs_kind", "fs_type", "fstype", "fs");
  return {
    id: first(v, "id", "volume", "volume_id", "name"),
    label: first(v, "label", "name", "partition_name"),
    fsLabel: first(v, "filesystem_label", "fs_label"),
    size: first(v, "size", "length"),
    fs: fs && typeof fs === "object" ? first(fs, "kind", "type", "name") : fs,
    type: first(v, "partition_type", "type_name", "type"),
    error: first(v, "error", "reason"),
    raw: v,
  };
}

export function mountOf(m) {
  return {
    id: first(m, "mount_id", "id"),
    backupId: first(m, "backup_id"),
    volume: first(m, "volume", "volume_id"),
    fs: first(m, "filesystem_type", "fs_type"),
    status: first(m, "status") || "mounted",
    created: toDate(first(m, "created_at")),
    expires: toDate(first(m, "expires_at")),
    lastAccess: toDate(first(m, "last_accessed_at")),
    owner: first(m, "owner", "token_name"),
    error: first(m, "error"),
    raw: m,
  };
}

function timeOf(e, name) {
  if (e[`${name}_ns`] !== undefined && e[`${name}_ns`] !== null) {
    return { date: toDate(e[`${name}_ns`], "ns"), ns: e[`${name}_ns`] };
  }
  const v = first(e, name, `${name}_at`);
  return { date: toDate(v), ns: null };
}

export function entryOf(e) {
  const kind = first(e, "kind", "type") || "file";
  return {
    name: first(e, "name") ?? "",
    path: first(e, "path"),
    pathQ: first(e, "path_query") ?? encodePath(first(e, "path") ?? "/"),
    kind: kind === "directory" ? "dir" : kind === "link" ? "symlink" : kind,
    size: first(e, "size"),
    mode: first(e, "mode"),
    uid: first(e, "uid"),
    gid: first(e, "gid"),
    owner: first(e, "owner", "user"),
    group: first(e, "group"),
    mtime: timeOf(e, "mtime"),
    atime: timeOf(e, "atime"),
    ctime: timeOf(e, "ctime"),
    btime: e.birth_time !== undefined ? timeOf(e, "birth_time") : timeOf(e, "btime"),
    inode: first(e, "inode", "ino"),
    nlink: first(e, "nlink", "links"),
    target: first(e, "symlink_target", "target", "link_target"),
    raw: e,
  };
}

export function pageOf(data) {
  const list = Array.isArray(data) ? data : first(data, "entries", "items", "files", "results") || [];
  return {
    entries: list.map(entryOf),
    next: Array.isArray(data) ? null : first(data, "next_cursor", "cursor_next", "next"),
    total: Array.isArray(data) ? null : first(data, "total", "total_count", "count"),
  };
}

// A guest path as a query value, for paths typed or built here (listings give path_query).
function encodePath(path) {
  return path.split("/").map((part) => encodeURIComponent(part)).join("/");
}

// Readable text of an encoded path (bytes that are not UTF-8 shown as \xNN, as the API does).
export function displayPath(pathQ) {
  return pathQ.split("/").map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part.replace(/%([0-9A-Fa-f]{2})/g, (m, hex) => (Number.parseInt(hex, 16) < 0x80 ? String.fromCharCode(Number.parseInt(hex, 16)) : `\\x${hex.toLowerCase()}`));
    }
  }).join("/");
}

export function parentOf(path) {
  if (path === "/" || !path) return "/";
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

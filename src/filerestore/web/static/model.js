// The API's records in the shapes the page uses. One mapper per schema of /openapi.json
// (named in its @param), and each field read under exactly the name the schema gives it:
// tests/web/test_fields.py checks every name read here against the schema, and that no
// other module reads an API record's fields.

import { isoDate, nsDate } from "./format.js";

/** @param {BackupOut} b */
export function backupOf(b) {
  return {
    id: b.id,
    vm: b.vm_name || "(no VM name)",
    disk: b.disk_name || "(no disk name)",
    kind: b.kind,
    parent: b.parent_backup_id,
    size: b.virtual_size,
    created: isoDate(b.created_at),
    repository: b.repository,
    path: b.path,
    status: b.status,
  };
}

/** @param {RepositoryOut} r */
export function repositoryOf(r) {
  return {
    name: r.name,
    kind: r.kind,
    location: r.root_path,
    endpoint: r.endpoint,
    region: r.region,
    pathStyle: r.path_style,
    verifyTls: r.verify_tls,
    enabled: r.enabled,
    available: r.available,
    reason: r.reason,
    created: isoDate(r.created_at),
  };
}

/** @param {BackupDetailOut} d */
export function backupDetailOf(d) {
  return { ...backupOf(d), volumes: d.volumes.map(volumeOf), chain: d.chain.map(backupOf) };
}

/** @param {VolumeOut} v */
export function volumeOf(v) {
  return {
    id: v.id,
    label: v.label,
    fsLabel: v.filesystem_label,
    size: v.size,
    fs: v.filesystem_type,
    type: v.type_name,
    error: v.filesystem_error,
  };
}

/** @param {MountOut} m */
export function mountOf(m) {
  return {
    id: m.mount_id,
    backupId: m.backup_id,
    volume: m.volume,
    fs: m.filesystem_type,
    status: m.status,
    created: isoDate(m.created_at),
    expires: isoDate(m.expires_at),
    lastAccess: isoDate(m.last_accessed_at),
    // the owner token's name; its id ("token:3") only when the token is gone
    owner: m.owner_name ?? m.owner,
    error: m.error,
  };
}

const timeOf = (ns) => ({ date: nsDate(ns), ns });

// The metadata fields of an entry: a listing's entries and the file index's versions
// carry the same fields by the same names.
/** @param {EntryOut | VersionOut} e */
function metadataOf(e) {
  return {
    kind: e.kind,
    size: e.size,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtime: timeOf(e.mtime_ns),
    atime: timeOf(e.atime_ns),
    ctime: timeOf(e.ctime_ns),
    btime: timeOf(e.btime_ns),
    inode: e.inode,
    nlink: e.nlink,
    target: e.target,
  };
}

/** @param {EntryOut} e */
export function entryOf(e) {
  return { name: e.name, path: e.path, pathQ: e.path_query, ...metadataOf(e) };
}

/** @param {FileInfoOut} f */
export function fileInfoOf(f) {
  return { ...entryOf(f), contentType: f.content_type, targetKind: f.target_kind };
}

/** @param {ListingOut} p */
export function pageOf(p) {
  return { entries: p.entries.map(entryOf), next: p.next_cursor, total: p.total };
}

/** @param {TotalsOut} t */
export function totalsOf(t) {
  return {
    files: t.files,
    dirs: t.dirs,
    symlinks: t.symlinks,
    bytes: t.bytes,
    complete: t.complete,
  };
}

/** @param {ResourcesOut} r */
export function resourcesOf(r) {
  return {
    sessionsUsed: r.sessions_used,
    sessionsLimit: r.sessions_limit,
    downloads: r.downloads_in_progress,
    readers: r.readers_open,
    memory: r.memory_rss_bytes,
  };
}

/** @param {TargetOut} t */
export function targetOf(t) {
  return { name: t.name, kind: t.kind, location: t.location };
}

/** @param {JobProgressOut} p */
export function jobProgressOf(p) {
  return {
    files: p.files_done,
    dirs: p.dirs_done,
    bytes: p.bytes_done,
    skipped: p.skipped,
    failed: p.failed,
    current: p.current_path,
    totalFiles: p.total_files,
    totalBytes: p.total_bytes,
    percent: p.percent,
    filesPerSecond: p.files_per_second,
    mbPerSecond: p.mb_per_second,
  };
}

/** @param {JobOut} j */
export function jobOf(j) {
  return {
    id: j.job_id,
    status: j.status,
    target: j.target,
    destination: j.destination,
    policy: j.policy,
    error: j.error,
    unkept: j.unkept,
    progress: jobProgressOf(j.progress),
    manifestSha256: j.manifest_sha256,
  };
}

// An ambiguous mount names its volumes as "p1 (ext4, 16 MiB, 'label')": the id comes first.
/** @param {ErrorDetail} e */
export function volumeChoicesOf(e) {
  return (e.choices || []).map((text) => ({
    id: text.split(" (")[0],
    label: text,
    size: null,
    fs: null,
  }));
}

// Readable text of an encoded path (bytes that are not UTF-8 shown as \xNN, as the API does).
export function displayPath(pathQ) {
  return pathQ
    .split("/")
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex) =>
          Number.parseInt(hex, 16) < 0x80
            ? String.fromCharCode(Number.parseInt(hex, 16))
            : `\\x${hex.toLowerCase()}`,
        );
      }
    })
    .join("/");
}

export function parentOf(path) {
  if (path === "/" || !path) return "/";
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

// --- the file index (search, history) ---------------------------------------------------

/** @param {BackupRefOut} b */
export function backupRefOf(b) {
  return {
    id: b.backup_id,
    vm: b.vm_name || "(no VM name)",
    disk: b.disk_name || "(no disk name)",
    created: isoDate(b.created_at),
    repository: b.repository,
  };
}

/** @param {VersionOut} v */
export function indexVersionOf(v) {
  return { ...metadataOf(v), hash: v.hash, backups: v.backups.map(backupRefOf) };
}

/** @param {HitOut} x */
export function hitOf(x) {
  return {
    path: x.path,
    pathQ: x.path_query,
    name: x.name,
    volume: x.volume,
    vm: x.vm_name,
    disk: x.disk_name,
    versions: x.versions.map(indexVersionOf),
  };
}

/** @param {SearchOut} p */
export function searchPageOf(p) {
  return { hits: p.hits.map(hitOf), next: p.next_cursor };
}

/** @param {EventOut} e */
export function eventOf(e) {
  return { event: e.event, backup: backupRefOf(e.backup) };
}

/** @param {HistoryOut} x */
export function historyOf(x) {
  return {
    path: x.path,
    pathQ: x.path_query,
    volume: x.volume,
    versions: x.versions.map(indexVersionOf),
    events: x.events.map(eventOf),
    lastSeen: x.last_seen ? backupRefOf(x.last_seen) : null,
  };
}

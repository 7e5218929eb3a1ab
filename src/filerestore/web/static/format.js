// Sizes, times, modes: formatted the same way everywhere on the page.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return "—";
  let value = Number(n);
  if (value < 1024) return `${value} B`;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

export function count(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

export function exactBytes(n) {
  if (n === null || n === undefined) return "—";
  return Number(n) < 1024 ? `${count(n)} bytes` : `${bytes(n)} (${count(n)} bytes)`;
}

// The API's times: ISO 8601 strings (sessions, backups), or integer nanoseconds since the
// epoch (an entry's *_ns fields).
export function isoDate(text) {
  if (text === null || text === undefined) return null;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function nsDate(ns) {
  return ns === null || ns === undefined ? null : new Date(Number(ns) / 1e6);
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

export function dateTime(d) {
  if (!d) return "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function dateTimeFull(d, ns) {
  if (!d) return "—";
  const sub = ns !== undefined && ns !== null ? Number(BigInt(ns) % 1000000000n) : 0;
  const frac = sub ? `.${pad(sub, 9)}` : "";
  const off = -d.getTimezoneOffset();
  const zone = `${off >= 0 ? "+" : "-"}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${dateTime(d)}:${pad(d.getSeconds())}${frac} ${zone}`;
}

export function relative(d, now = new Date()) {
  if (!d) return "—";
  const sec = Math.round((d.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(sec);
  const minutes = Math.round(abs / 60);
  let text;
  if (abs < 60) text = `${abs} s`;
  else if (minutes < 60) text = `${minutes} min`;
  else if (abs < 86400 * 2) text = `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  else text = `${Math.round(abs / 86400)} days`;
  return sec >= 0 ? `in ${text}` : `${text} ago`;
}

const TYPE_CHARS = {
  9604: "d",
  21609: "l",
  16807: "-",
  4802: "c",
  14406: "b",
  2401: "p",
  26411: "s",
};

export function modeString(mode, kind) {
  if (mode === null || mode === undefined) return "—";
  const m = Number(mode);
  let type = TYPE_CHARS[m & 0o170000];
  if (!type) type = kind === "dir" ? "d" : kind === "symlink" ? "l" : "-";
  const rwx = (bits, special, ch) =>
    [
      bits & 4 ? "r" : "-",
      bits & 2 ? "w" : "-",
      special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? "x" : "-",
    ].join("");
  return (
    type +
    rwx((m >> 6) & 7, m & 0o4000, "s") +
    rwx((m >> 3) & 7, m & 0o2000, "s") +
    rwx(m & 7, m & 0o1000, "t")
  );
}

export function modeOctal(mode) {
  if (mode === null || mode === undefined) return "";
  return (Number(mode) & 0o7777).toString(8).padStart(4, "0");
}

"""Human-readable output: `ls -l`-style lines, `stat` blocks, the `inspect` tables.

Guest names can hold anything but ``/`` and NUL, including terminal escape sequences and bytes
that are not UTF-8; they are shown with backslash escapes so a hostile name cannot drive the
terminal. JSON output carries them unchanged instead (see :mod:`~filerestore.cli.json_output`).
"""

from __future__ import annotations

import stat as stat_mod
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from filerestore.fs.entry import Entry
from filerestore.restore.names import printable
from filerestore.restore.stack import format_size

if TYPE_CHECKING:
    from filerestore.restore.describe import ImageDescription


def format_time(ns: int | None) -> str:
    if ns is None:
        return "-"
    try:
        moment = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"@{ns}ns"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_mode(entry: Entry) -> str:
    if entry.mode is None:
        return "?" * 10
    return stat_mod.filemode(entry.mode)


def ls_line(entry: Entry, name: str) -> str:
    """One `ls -l` line: mode, links, owner, group, size, mtime (UTC), name -> target."""
    nlink = "-" if entry.nlink is None else str(entry.nlink)
    uid = "-" if entry.uid is None else str(entry.uid)
    gid = "-" if entry.gid is None else str(entry.gid)
    line = (
        f"{format_mode(entry)} {nlink:>3} {uid:>5} {gid:>5} {entry.size:>12} "
        f"{format_time(entry.mtime_ns)} {printable(name)}"
    )
    if entry.target is not None:
        line += f" -> {printable(entry.target)}"
    return line


def stat_block(entry: Entry) -> str:
    mode = (
        "-" if entry.mode is None else f"{stat_mod.S_IMODE(entry.mode):04o} ({format_mode(entry)})"
    )
    rows = [
        ("path", printable(entry.path)),
        ("kind", str(entry.kind)),
        ("size", str(entry.size)),
        ("mode", mode),
        ("uid", _opt(entry.uid)),
        ("gid", _opt(entry.gid)),
        ("inode", _opt(entry.inode)),
        ("links", _opt(entry.nlink)),
        ("modified", format_time(entry.mtime_ns)),
        ("accessed", format_time(entry.atime_ns)),
        ("changed", format_time(entry.ctime_ns)),
        ("born", format_time(entry.btime_ns)),
    ]
    if entry.target is not None:
        rows.append(("target", printable(entry.target)))
    if entry.data_location is not None:
        rows.append(("data in", entry.data_location))
    return "\n".join(f"{key + ':':<10}{value}" for key, value in rows)


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)


def inspect_text(desc: ImageDescription) -> str:
    lines = [f"image: {printable(desc.path)}", f"virtual size: {_size(desc.virtual_size)}", ""]
    lines.append("backing chain (top first):")
    for depth, link in enumerate(desc.chain):
        backing = f"  backing: {printable(link.backing_name)}" if link.backing_name else ""
        lines.append(
            f"  {depth:>2}  {link.format:<6} {_size(link.virtual_size):<28} "
            f"{printable(link.path)}{backing}"
        )
    lines.append("")
    rows = [("ID", "OFFSET", "SIZE", "TYPE", "NAME", "FILESYSTEM", "LABEL")]
    for vol in desc.volumes:
        fs_kind = vol.filesystem_type or "-"
        if vol.filesystem_error:
            fs_kind += " (unreadable)"
        rows.append(
            (
                printable(vol.id),
                "-" if vol.offset is None else str(vol.offset),
                format_size(vol.size),
                printable(vol.type_name or vol.type),
                printable(vol.label or "-"),
                fs_kind,
                printable(vol.filesystem_label or ""),
            )
        )
    if len(rows) == 1:
        lines.append("volumes: none found")
    else:
        lines.append("volumes:")
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
            lines.append("  " + "  ".join(cells).rstrip())
    for vol in desc.volumes:
        if vol.filesystem_error:
            lines.append(f"  {printable(vol.id)}: {printable(vol.filesystem_error)}")
    return "\n".join(lines)


def _size(size: int) -> str:
    return f"{format_size(size)} ({size} bytes)"

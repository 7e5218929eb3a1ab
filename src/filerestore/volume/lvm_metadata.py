"""The LVM2 text metadata format: a config-tree parser and the volume group it describes.

# References: LVM2 lib/config/config.c (the tokenizer: sections ``name { }``, assignments
# ``key = value``, arrays ``[a, b]``, double-quoted strings with ``\\`` escapes, ``#``
# comments) and lib/format_text/import_vsn1.c (which keys a volume group, a physical volume,
# a logical volume and a segment carry); doc/lvm2-raid.txt for the segment types.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from filerestore.errors import LvmMetadataError

# A config tree: sections are dicts, values are int, float, str or lists of int/str.
Scalar = int | float | str
Value = Scalar | list[Scalar] | dict[str, "Value"]
Section = dict[str, Value]

MAX_TEXT = 4 << 20  # as lvm.MAX_METADATA: four times LVM's default metadata area
MAX_DEPTH = 32  # real metadata nests five deep (vg / logical_volumes / lv / segment)

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+|\#[^\n]*)
  | (?P<punct>[{}\[\]=,])
  | "(?P<string>(?:[^"\\]|\\.)*)"
  | (?P<word>[^ \t\r\n{}\[\]=,"\#]+)
    """,
    re.VERBOSE | re.DOTALL,
)
# ASCII digits only, as LVM's tokenizer reads them (``\d`` would take any script's digits)
_NUMBER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?[0-9]+\.[0-9]*")
# LVM keeps integers in 64 bits (strtoll); a longer number is corrupt, and Python's int()
# refuses more than 4,300 digits with a bare ValueError
MAX_DIGITS = 20
INT64 = (-(1 << 63), (1 << 63) - 1)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


def iter_tokens(text: str) -> Iterator[tuple[str, str]]:
    """(kind, text) tokens as they are read: kind is 'punct', 'string' or 'word'."""
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise LvmMetadataError(f"LVM metadata: unexpected character at offset {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "space" or kind is None:
            continue
        value = m.group(kind)
        yield kind, _UNESCAPE.sub(r"\1", value) if kind == "string" else value


class _Parser:
    """A recursive-descent parser pulling tokens one at a time: text that is refused early
    (nested too deep, a syntax error) is not tokenized to its end first."""

    def __init__(self, tokens: Iterator[tuple[str, str]]) -> None:
        self.tokens = tokens
        self._ahead: tuple[str, str] | None = None

    def _at_end(self) -> bool:
        if self._ahead is None:
            self._ahead = next(self.tokens, None)
        return self._ahead is None

    def _next(self) -> tuple[str, str]:
        if self._at_end():
            raise LvmMetadataError("LVM metadata: unexpected end of text")
        tok, self._ahead = self._ahead, None
        assert tok is not None
        return tok

    def _expect(self, punct: str) -> None:
        kind, text = self._next()
        if kind != "punct" or text != punct:
            raise LvmMetadataError(f"LVM metadata: expected {punct!r}, found {text!r}")

    def section(self, depth: int, closed: bool) -> Section:
        if depth > MAX_DEPTH:
            raise LvmMetadataError("LVM metadata nests too deep")
        out: Section = {}
        while True:
            if self._at_end():
                if closed:
                    raise LvmMetadataError("LVM metadata: section is not closed")
                return out
            kind, text = self._next()
            if kind == "punct" and text == "}" and closed:
                return out
            if kind not in ("word", "string"):
                raise LvmMetadataError(f"LVM metadata: expected a name, found {text!r}")
            op_kind, op = self._next()
            if op_kind == "punct" and op == "{":
                out[text] = self.section(depth + 1, closed=True)
            elif op_kind == "punct" and op == "=":
                out[text] = self.value()
            else:
                raise LvmMetadataError(f"LVM metadata: expected '=' or '{{' after {text!r}")

    def value(self) -> Value:
        kind, text = self._next()
        if kind == "punct" and text == "[":
            items: list[Scalar] = []
            while True:
                kind, text = self._next()
                if kind == "punct" and text == "]":
                    return items
                if kind == "punct" and text == "," and items:
                    continue
                if kind == "punct":
                    raise LvmMetadataError(f"LVM metadata: unexpected {text!r} in an array")
                items.append(_scalar(kind, text))
        if kind == "punct":
            raise LvmMetadataError(f"LVM metadata: expected a value, found {text!r}")
        return _scalar(kind, text)


def _scalar(kind: str, text: str) -> Scalar:
    if kind == "string":
        return text
    if _NUMBER.fullmatch(text):
        value = int(text) if len(text) <= MAX_DIGITS else INT64[1] + 1
        if not INT64[0] <= value <= INT64[1]:
            raise LvmMetadataError(
                f"LVM metadata: number {text[:24]}{'...' if len(text) > 24 else ''} does not "
                "fit in 64 bits"
            )
        return value
    if _FLOAT.fullmatch(text):
        return float(text)
    raise LvmMetadataError(f"LVM metadata: bare word {text!r} is not a value")


def parse_config(text: str) -> Section:
    """Parse metadata text into a tree of dicts; LvmMetadataError on any syntax error."""
    if len(text) > MAX_TEXT:
        raise LvmMetadataError("LVM metadata text is too large")
    return _Parser(iter_tokens(text)).section(0, closed=False)


# --- the volume group the tree describes ---------------------------------------------------


@dataclass(frozen=True)
class PvRef:
    name: str  # "pv0": how segments refer to it
    uuid: str  # with dashes, as in the metadata
    pe_start: int  # sectors (512 bytes) from the start of the PV device
    pe_count: int
    missing: bool


@dataclass(frozen=True)
class SegmentMeta:
    start_extent: int
    extent_count: int
    type: str  # "striped" (linear is striped with one stripe), or a type we do not read
    stripe_size: int  # sectors; 0 when there is one stripe
    stripes: tuple[tuple[str, int], ...]  # (pv name, first physical extent) per stripe


@dataclass(frozen=True)
class LvMeta:
    name: str
    uuid: str
    visible: bool
    segments: tuple[SegmentMeta, ...]


@dataclass(frozen=True)
class VgMeta:
    name: str
    uuid: str
    seqno: int
    extent_size: int  # sectors
    pvs: tuple[PvRef, ...]
    lvs: tuple[LvMeta, ...]


def _get(section: Section, key: str, kind: type, where: str) -> object:
    value = section.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise LvmMetadataError(f"LVM metadata: {where} has no valid {key!r}")
    return value


def _int(section: Section, key: str, where: str, minimum: int = 0) -> int:
    value = _get(section, key, int, where)
    assert isinstance(value, int)
    if value < minimum:
        raise LvmMetadataError(f"LVM metadata: {where} {key} = {value} is out of range")
    return value


def _str(section: Section, key: str, where: str) -> str:
    value = _get(section, key, str, where)
    assert isinstance(value, str)
    return value


def _sections(section: Section, key: str) -> list[tuple[str, Section]]:
    value = section.get(key, {})
    if not isinstance(value, dict):
        raise LvmMetadataError(f"LVM metadata: {key!r} is not a section")
    out = []
    for name, sub in value.items():
        if not isinstance(sub, dict):
            raise LvmMetadataError(f"LVM metadata: {key}/{name} is not a section")
        out.append((name, sub))
    return out


def _flags(section: Section, key: str) -> list[str]:
    value = section.get(key, [])
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def volume_group(tree: Section) -> VgMeta:
    """The one volume group in a parsed metadata text."""
    groups = [(k, v) for k, v in tree.items() if isinstance(v, dict)]
    if len(groups) != 1:
        raise LvmMetadataError(f"LVM metadata holds {len(groups)} volume groups, expected 1")
    name, vg = groups[0]
    pvs = tuple(
        PvRef(
            pv_name,
            _str(pv, "id", f"pv {pv_name}"),
            _int(pv, "pe_start", pv_name),
            _int(pv, "pe_count", pv_name),
            "MISSING" in _flags(pv, "flags"),
        )
        for pv_name, pv in _sections(vg, "physical_volumes")
    )
    lvs = tuple(_logical_volume(lv_name, lv) for lv_name, lv in _sections(vg, "logical_volumes"))
    return VgMeta(
        name,
        _str(vg, "id", f"vg {name}"),
        _int(vg, "seqno", name),
        _int(vg, "extent_size", name, minimum=1),
        pvs,
        lvs,
    )


def _logical_volume(name: str, lv: Section) -> LvMeta:
    found = [(k, v) for k, v in lv.items() if k.startswith("segment") and isinstance(v, dict)]
    segments = sorted(
        (_segment(f"lv {name} {k}", v) for k, v in found), key=lambda s: s.start_extent
    )
    expected = 0
    for s in segments:
        if s.start_extent != expected:
            raise LvmMetadataError(f"LVM metadata: lv {name} segments leave a gap or overlap")
        expected += s.extent_count
    visible = "VISIBLE" in _flags(lv, "status")
    return LvMeta(name, _str(lv, "id", f"lv {name}"), visible, tuple(segments))


def _segment(where: str, seg: Section) -> SegmentMeta:
    start = _int(seg, "start_extent", where)
    count = _int(seg, "extent_count", where, minimum=1)
    seg_type = _str(seg, "type", where)
    if seg_type != "striped":
        return SegmentMeta(start, count, seg_type, 0, ())
    n = _int(seg, "stripe_count", where, minimum=1)
    raw = seg.get("stripes")
    if not isinstance(raw, list) or len(raw) != 2 * n:
        raise LvmMetadataError(f"LVM metadata: {where} stripes do not match stripe_count")
    stripes = []
    for pv, pe in zip(raw[::2], raw[1::2], strict=True):
        if not isinstance(pv, str) or not isinstance(pe, int) or pe < 0:
            raise LvmMetadataError(f"LVM metadata: {where} has a malformed stripe")
        stripes.append((pv, pe))
    stripe_size = _int(seg, "stripe_size", where, minimum=1) if n > 1 else 0
    if n > 1 and count % n:
        raise LvmMetadataError(f"LVM metadata: {where} extent_count is not a multiple of stripes")
    return SegmentMeta(start, count, seg_type, stripe_size, tuple(stripes))

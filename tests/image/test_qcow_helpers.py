"""The qcow2 builders other layers use make what they say (checked with qemu-img), and read back."""

from __future__ import annotations

from pathlib import Path

from filerestore.image import open_image, probe_chain
from tests.image.conftest import sha256_of_file, sha256_of_reader
from tests.imagebuild import qcow
from tests.imagebuild.cache import cached
from tests.imagebuild.tree import MiB, block_content

WRITES = [(3 * MiB + 100, block_content("helper-a", 70_000)), (19 * MiB, b"\xee" * 4096)]
ZEROS = [(6 * MiB, 128 * 1024)]


def test_make_incremental_holds_its_writes() -> None:
    base = qcow.to_qcow2(qcow.test_disk(), "helper-base")
    inc = qcow.make_incremental(base, WRITES, "helper-inc", zeros=ZEROS)
    want = bytearray(qcow.test_disk().read_bytes())
    for offset, data in WRITES:
        want[offset : offset + len(data)] = data
    for offset, length in ZEROS:
        want[offset : offset + length] = bytes(length)
    assert qcow.qemu_raw(inc).read_bytes() == want
    links = probe_chain(inc)
    assert [link.backing_name for link in links] == [base.name, None]
    with open_image(inc) as disk:
        assert disk.read_at(0, disk.size) == want


def _changed_disk(out: Path) -> None:
    data = bytearray(qcow.test_disk().read_bytes())
    data[2 * MiB : 2 * MiB + 5000] = block_content("changed", 5000)  # in a hole: added
    data[8 * MiB : 8 * MiB + 65536] = bytes(65536)  # deleted
    data.extend(block_content("grown", MiB))  # the disk grew
    out.write_bytes(data)


def test_incremental_from_raw_is_small_and_exact() -> None:
    old = qcow.test_disk()
    new = cached("helper-changed-disk", ["changed", str(old)], _changed_disk, suffix="raw")
    base = qcow.to_qcow2(old, "helper-base")
    inc = qcow.incremental_from_raw(base, old, new, "helper-inc-from-raw")
    assert sha256_of_file(qcow.qemu_raw(inc)) == sha256_of_file(new)
    own = [e for e in qcow.qemu_map(inc) if e["depth"] == 0 and e["data"]]
    # 2 changed 64 KiB blocks, plus the grown MiB (its first block shares the old tail's)
    assert sum(e["length"] for e in own) <= 2 * 65536 + MiB + 65536
    with open_image(inc) as disk:
        assert sha256_of_reader(disk) == sha256_of_file(new)

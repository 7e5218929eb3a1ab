"""The metadata budget: a 64-file chain of 32 MiB L1 tables reads right within it, or is
refused by name; never a MemoryError.

Expected bytes come from qemu-io reading the same chain (which itself loads every L1 table
whole: about 2 GiB, once per test). Peak RSS figures are in bench/metadata_budget.py; here
only outcomes are asserted, including one under an address-space limit (RLIMIT_AS, as the
API workers run), which the old whole-L1 reader fails with a MemoryError.
"""

from __future__ import annotations

import re
import resource
import subprocess
from pathlib import Path

import pytest

from filerestore.errors import MetadataBudgetError
from filerestore.image import open_image
from filerestore.image.metadata import MetadataCache
from filerestore.restore import open_stack
from tests.cli.runner import SCRIPT, fails
from tests.imagebuild.deep_chain import FILES, VIRTUAL_SIZE, WRITES, deep_sparse_chain, top

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain() -> Path:
    return deep_sparse_chain()


def ranges() -> list[tuple[int, int]]:
    """Around every write's edges, the start of the disk, a hole, and the last bytes."""
    out = [(0, 8192), (1 << 50, 65536), (VIRTUAL_SIZE - 100, 100)]
    for _, offset, length, _ in WRITES:
        for edge in (offset, offset + length):
            start = max(0, edge - 3000)
            out.append((start, min(6000, VIRTUAL_SIZE - start)))
    return out


def qemu_io_read(image: Path, wanted: list[tuple[int, int]]) -> list[bytes]:
    """The bytes qemu-io reads at each (offset, length), from its hex dump."""
    args = [a for off, n in wanted for a in ("-c", f"read -v {off} {n}")]
    out = subprocess.run(
        ["qemu-io", "-r", "-f", "qcow2", *args, str(image)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    dumped: dict[int, int] = {}
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+):\s+((?:[0-9a-f]{2} )*[0-9a-f]{2})", line)
        if m:
            base = int(m.group(1), 16)
            for i, byte in enumerate(m.group(2).split()):
                dumped[base + i] = int(byte, 16)
    return [bytes(dumped[o] for o in range(off, off + n)) for off, n in wanted]


def test_metadata_cache_stays_within_its_capacity() -> None:
    cache = MetadataCache(100_000)
    for i in range(1000):
        cache.put(("t", i), b"x", 4096)
        cache.put_cluster(("c", i), b"y", 3000)
        assert cache.used <= cache.capacity
    assert cache.get(("t", 999)) == b"x"  # the most recent stays
    assert cache.get(("t", 0)) is None  # the oldest went
    assert cache.get_cluster(("c", 999)) == b"y"
    assert cache.get_cluster(("c", 999 - MetadataCache.CLUSTERS_KEPT)) is None
    cache.put(("huge", 0), b"z", 200_000)  # costlier than the capacity: not kept
    assert cache.get(("huge", 0)) is None


def test_deep_chain_reads_like_qemu_within_the_budget(chain: Path) -> None:
    wanted = ranges()
    expected = qemu_io_read(top(chain), wanted)
    # the default budget, and the least one that can hold the chain's working set
    with open_image(top(chain), chain) as disk:
        assert len(disk.chain) == 64
        least = disk.working_set
    for budget in (64 << 20, least):
        with open_image(top(chain), chain, metadata_budget=budget) as disk:
            assert disk.size == VIRTUAL_SIZE
            for (offset, length), want in zip(wanted, expected, strict=True):
                assert disk.read_at(offset, length) == want, (budget, offset)
                assert disk.metadata.used <= budget
    # a pattern byte from a layer in the middle shows the read went down the chain
    assert any(b"\x30" * 100 in e for e in expected)


def test_files_read_through_the_deep_chain(chain: Path) -> None:
    with open_stack(top(chain), repository=chain) as stack:
        for name, data in FILES.items():
            reader = stack.fs.open("/" + name)
            assert reader.read_at(0, reader.size) == data


def test_a_budget_below_the_working_set_is_refused(chain: Path) -> None:
    with pytest.raises(MetadataBudgetError, match="image metadata budget") as info:
        open_image(top(chain), chain, metadata_budget=2 << 20)
    assert str(chain) not in str(info.value)  # the repository path, not the host one
    line = fails(4, "ls", top(chain), "--metadata-budget", str(2 << 20))
    assert "metadata budget" in line
    line = fails(4, "inspect", top(chain), "--metadata-budget", str(2 << 20))
    assert "metadata budget" in line


def _address_space_limit() -> None:
    limit = 1 << 30  # the old reader needs over 2 GiB of L1 tables for this chain
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.parametrize("command", [["ls", "/etc"], ["inspect"]])
def test_cli_reads_the_deep_chain_under_a_1_gib_address_space(
    chain: Path, command: list[str]
) -> None:
    proc = subprocess.run(
        [str(SCRIPT), command[0], str(top(chain)), *command[1:]],
        capture_output=True,
        preexec_fn=_address_space_limit,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stderr == b""
    if command[0] == "ls":
        assert b"motd" in proc.stdout
    else:
        assert proc.stdout.count(b"qcow2") >= 64

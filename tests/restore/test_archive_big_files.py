"""Files over 4 and 8 GiB streamed in flat memory, and sparse files kept as sparse TAR members."""

from __future__ import annotations

import os
import subprocess
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

from filerestore.restore.archive import ArchiveOptions, archive_stream
from filerestore.restore.archive_sparse import SparseLayout, sparse_info
from tests.imagebuild.tree import GiB, MiB, block_content


class SparseSink:
    """Writes a stream to a file, seeking over all-zero chunks so a 5 GiB ZIP costs no disk."""

    zeros = bytes(MiB)

    def __init__(self, path: Path):
        self.fh = path.open("wb")
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if chunk == self.zeros or (len(chunk) < MiB and chunk.count(0) == len(chunk)):
            self.fh.seek(len(chunk), os.SEEK_CUR)
        else:
            self.fh.write(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        self.fh.truncate(self.size)
        self.fh.close()


def test_zip64_file_over_4gib_streams_in_flat_memory(fs, source, tmp_path):
    big = source.path("/big-sparse.bin")
    size = big.stat().st_size
    assert size == 5 * GiB + 8192
    sink = SparseSink(tmp_path / "big.zip")
    tracemalloc.start()
    try:
        for chunk in archive_stream(fs, ["/big-sparse.bin"], "zip"):
            sink.write(chunk)
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sink.close()
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB while streaming 5 GiB"
    test = subprocess.run(["7zz", "t", tmp_path / "big.zip"], capture_output=True, text=True)
    assert test.returncode == 0 and "Everything is Ok" in test.stdout, test.stdout
    with zipfile.ZipFile(tmp_path / "big.zip") as zf:
        (info,) = zf.infolist()
        assert (info.filename, info.file_size) == ("big-sparse.bin", size)
        # compared with the tree recipe: "start", zeros up to 5 GiB, then 8 KiB of
        # block_content("big-tail"); zipfile checks the CRC as it reads
        zeros = bytes(16 * MiB)
        pos = 0
        with zf.open(info) as member:
            while block := member.read(16 * MiB):
                if pos == 0:
                    assert block[:5] == b"start" and block[5:] == zeros[5:]
                elif pos + len(block) <= 5 * GiB:
                    assert block == zeros[: len(block)]
                else:
                    tail = 5 * GiB - pos
                    assert block[:tail] == zeros[:tail]
                    assert block[tail:] == block_content("big-tail", 8192)
                pos += len(block)
        assert pos == size


def test_tar_of_big_file_streams_in_flat_memory(fs, source):
    tracemalloc.start()
    total = 0
    try:
        dense = ArchiveOptions(sparse=False)  # every byte, holes as zeros
        for chunk in archive_stream(fs, ["/big-sparse.bin"], "tar", dense):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB
    size = 5 * GiB + 8192
    # one PAX-less ustar header, data padded to 512, two zero blocks, padded to 10 KiB
    assert total == -(-(512 + size + 1024) // 10240) * 10240


SPARSE = ["/big-sparse.bin", "/sparse.bin"]


def test_tar_keeps_holes_as_holes(fs, source, tmp_path):
    """Issue 8, defect 4: a file's holes are a sparse member's holes, not zeros sent; GNU
    tar and the stdlib's tarfile (two independent readers) restore the files byte for byte,
    and GNU tar with their holes. The bound is the source files' own allocation."""
    allocated = sum(source.path(p).lstat().st_blocks * 512 for p in SPARSE)
    logical = sum(source.path(p).lstat().st_size for p in SPARSE)
    archive = tmp_path / "sparse.tar"
    with archive.open("wb") as out:
        for chunk in archive_stream(fs, SPARSE, "tar"):
            out.write(chunk)
    assert archive.stat().st_size <= allocated + 64 * 1024 < logical
    by_gnu, by_python = tmp_path / "gnu", tmp_path / "python"
    by_gnu.mkdir()
    run = subprocess.run(["tar", "-xf", archive, "-C", by_gnu], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(by_python, filter="data")
    assert sorted(names) == ["big-sparse.bin", "sparse.bin"]  # the real names, no placeholder
    for path in SPARSE:
        name = path.lstrip("/")
        for dest in (by_gnu, by_python):
            same = subprocess.run(["cmp", source.path(path), dest / name], capture_output=True)
            assert same.returncode == 0, same.stdout
        restored = (by_gnu / name).lstat()
        assert restored.st_blocks * 512 <= source.path(path).lstat().st_blocks * 512 + MiB


def test_tar_sparse_member_layout():
    """The sparse map as the GNU format 1.0 defines it, built by hand from the rule."""
    layout = SparseLayout([(0, 4096), (1 << 20, 512)], 8 << 20)
    text = b"3\n0\n4096\n1048576\n512\n8388608\n0\n"  # ends in a hole: a last empty region
    assert layout.map_bytes == text + bytes(512 - len(text))
    assert layout.area == 512 + 4096 + 512
    info = tarfile.TarInfo("d/" + "\u00e9" * 3)
    sparse = sparse_info(info, layout, 7)
    assert sparse.name == "GNUSparseFile.0/7"  # no ASCII placeholder: no PAX path record
    assert sparse.pax_headers["GNU.sparse.name"] == "d/" + "\u00e9" * 3
    assert sparse.pax_headers["GNU.sparse.realsize"] == str(8 << 20)
    assert "path" not in sparse.pax_headers

"""Archives of what cannot be read: errors before the first byte, a read error mid-stream, a
directory cycle, a stream closed early, and unreadable entries listed instead of fatal."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import ArchiveAbortedError, InvalidParameterError, PathNotFoundError
from filerestore.fs import open_filesystem
from filerestore.restore.archive import archive_stream
from filerestore.restore.browse import dir_totals, read_range, walk
from filerestore.restore.names import printable
from filerestore.restore.partial import ERRORS_FILE
from tests.imagebuild import broken_entries as broken
from tests.imagebuild import fs_linux
from tests.restore.archive_checks import member_data, write_stream


def test_tools_present():
    # the archive round trips rely on these; a missing tool must fail loudly, not skip
    assert shutil.which("7zz") and shutil.which("tar") and shutil.which("debugfs")


def test_errors_before_the_first_byte(fs):
    with pytest.raises(PathNotFoundError):
        archive_stream(fs, ["/docs", "/nope"], "zip")
    with pytest.raises(InvalidParameterError):
        archive_stream(fs, ["/docs"], "rar")
    with pytest.raises(InvalidParameterError):
        archive_stream(fs, [], "tar")


@pytest.fixture(scope="module")
def damaged_image(source, tmp_path_factory) -> Path:
    """A copy of the image whose docs/data.bin has its second extent pointing far past the
    end of the volume (set with debugfs): reads fail after its first MiB."""
    image = fs_linux.copy_image(source.image, tmp_path_factory.mktemp("bad") / "bad.img")
    # i_block words: 0-2 extent header, 3-5 first extent, 6-8 second (8: start block, low)
    fs_linux.run("debugfs", "-w", "-R", "set_inode_field /docs/data.bin block[8] 0x7ffffff0", image)
    extents = fs_linux.run("debugfs", "-R", "stat /docs/data.bin", image)
    assert "2147483632" in extents  # the damage is there
    return image


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_read_error_mid_stream_aborts_without_a_valid_archive(damaged_image, tmp_path, fmt):
    got = bytearray()
    with FileReader(damaged_image) as reader:
        fs = open_filesystem(reader)
        try:
            with pytest.raises(ArchiveAbortedError) as err:
                for chunk in archive_stream(fs, ["/docs"], fmt):
                    got += chunk
        finally:
            fs.close()
    assert "/docs/data.bin" in str(err.value) and "discarded" in str(err.value)
    partial = write_stream([bytes(got)], tmp_path / f"partial.{fmt}")
    if fmt == "zip":
        assert subprocess.run(["7zz", "t", partial], capture_output=True).returncode != 0
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(partial)
    else:
        flag = "-tzf" if fmt == "tar.gz" else "-tf"
        assert subprocess.run(["tar", flag, partial], capture_output=True).returncode != 0
        with pytest.raises((tarfile.ReadError, EOFError)), tarfile.open(partial) as tar:
            for m in tar:
                if m.isreg():
                    member_data(tar, m).read()


@pytest.fixture(scope="module")
def cyclic_image(source, tmp_path_factory) -> Path:
    """A copy of the image with docs/sub/loop a hard link to /docs (made by debugfs): a
    directory cycle only a corrupt image can hold."""
    image = fs_linux.copy_image(source.image, tmp_path_factory.mktemp("cyc") / "cyc.img")
    fs_linux.run("debugfs", "-w", "-R", "link /docs /docs/sub/loop", image)
    listing = fs_linux.run("debugfs", "-R", "ls -l /docs/sub", image)
    docs_inode = fs_linux.run("debugfs", "-R", "stat /docs", image).split()[1]
    assert re.search(rf"^\s*{docs_inode}\s+40755.*\sloop\s*$", listing, re.M), listing
    return image


@pytest.mark.timeout(60)
def test_directory_cycle_is_archived_once(cyclic_image, source):
    with FileReader(cyclic_image) as reader:
        fs = open_filesystem(reader)
        try:
            data = b"".join(archive_stream(fs, ["/docs"], "tar"))
            walked = [e.path for e in walk(fs, "/docs", max_depth=256)]
            totals = dir_totals(fs, ["/docs"])
        finally:
            fs.close()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = [m.name for m in tar]
    expected = {"docs"} | {f"docs/{rel}" for rel in source.entries("/docs")} | {"docs/sub/loop"}
    assert sorted(names) == sorted(expected)  # the loop is listed, never descended
    assert sorted(walked) == sorted("/" + n for n in expected - {"docs"})
    assert totals.dirs == 3 and totals.complete


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_closing_a_stream_early_leaves_the_filesystem_usable(fs, fmt):
    # what an HTTP adapter does when the client disconnects
    stream = archive_stream(fs, ["/docs", "/sparse.bin"], fmt)
    first = next(stream)
    assert first
    stream.close()
    assert b"".join(read_range(fs, "/hello.txt")) == b"hello, world\n"


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_unreadable_entries_are_listed_not_fatal(fmt, tmp_path):
    with FileReader(broken.broken_entries_image()) as reader:
        fs = open_filesystem(reader)
        try:
            archive = write_stream(archive_stream(fs, ["/"], fmt), tmp_path / f"a.{fmt}")
        finally:
            fs.close()
    dest = tmp_path / "x"
    dest.mkdir()
    if fmt == "zip":  # 7-Zip tests every member's CRC, then extracts
        assert subprocess.run(["7zz", "t", archive], capture_output=True).returncode == 0
        subprocess.run(["7zz", "x", f"-o{dest}", archive], check=True, capture_output=True)
    else:
        subprocess.run(["tar", "-xf", archive, "-C", dest], check=True, capture_output=True)
    errors = (dest / ERRORS_FILE).read_text().splitlines()  # beside the root folder
    assert (
        errors[0]
        == f"{len(broken.BROKEN)} entries could not be restored and are missing from this archive:"
    )
    assert {line.split("\t")[0] for line in errors[1:]} == {printable(p) for p in broken.BROKEN}
    for rel, data in broken.GOOD.items():
        assert (dest / "root" / rel).read_bytes() == data, rel
    assert not (dest / "root" / broken.BAD_EXTENT).exists()
    for rel in broken.NUL_LINKS:
        assert not os.path.lexists(dest / "root" / rel)

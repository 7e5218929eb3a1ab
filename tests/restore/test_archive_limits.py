"""Archives of many entries (ZIP64 past 65,535), and the entry and byte limits that refuse an
archive before its first byte or abort one not counted first."""

from __future__ import annotations

import io
import stat
import subprocess
import tarfile
import zipfile

import pytest

from filerestore.errors import ArchiveTooLargeError
from filerestore.restore.archive import ArchiveOptions, archive_stream
from tests.restore.archive_checks import member_data, write_stream
from tests.restore.conftest import listdir


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_10000_entry_directory(fs, source, fmt):
    data = b"".join(archive_stream(fs, ["/many"], fmt))
    want = {
        f"many/{n}": (source.path("/many") / n).read_bytes() for n in listdir(source.path("/many"))
    }
    got = {}
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                got[info.filename] = None if info.is_dir() else zf.read(info)
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for m in tar:
                got[m.name + ("/" if m.isdir() else "")] = (
                    member_data(tar, m).read() if m.isreg() else None
                )
    assert got.pop("many/") is None
    assert got == want


def test_zip64_past_65535_entries_and_duplicate_roots(fs, tmp_path):
    archive = write_stream(archive_stream(fs, ["/many"] * 7, "zip"), tmp_path / "a.zip")
    raw = archive.read_bytes()
    assert b"PK\x06\x06" in raw[-200:]  # ZIP64 end of central directory record
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert len(names) == len(set(names)) == 7 * 10_001
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"many"} | {f"many ({i})" for i in range(2, 8)}
    test = subprocess.run(["7zz", "t", archive], capture_output=True, text=True)
    assert test.returncode == 0 and "Files: 70000" in test.stdout, test.stdout


def test_entry_limit_refuses_before_the_first_byte(fs, source):
    count = sum(1 for _ in source.entries("/many")) + 1  # with /many itself, from the host
    assert count > 100
    with pytest.raises(ArchiveTooLargeError, match="more than 100 entries"):
        archive_stream(fs, ["/many"], "zip", ArchiveOptions(max_entries=100))
    assert len(list(archive_stream(fs, ["/many"], "tar", ArchiveOptions(max_entries=count))))
    with pytest.raises(ArchiveTooLargeError):
        archive_stream(fs, ["/many"], "tar", ArchiveOptions(max_entries=count - 1))


def test_byte_limit_refuses_before_the_first_byte(fs, source):
    total = sum(st.st_size for st in source.entries("/docs").values() if stat.S_ISREG(st.st_mode))
    with pytest.raises(ArchiveTooLargeError, match=f"more than {total - 1} bytes"):
        archive_stream(fs, ["/docs"], "tar", ArchiveOptions(max_bytes=total - 1))
    assert len(list(archive_stream(fs, ["/docs"], "tar", ArchiveOptions(max_bytes=total))))


def test_entry_limit_aborts_an_archive_not_counted_first(fs):
    options = ArchiveOptions(max_entries=100, precount=False)
    stream = archive_stream(fs, ["/many"], "tar", options)
    with pytest.raises(ArchiveTooLargeError):
        for _ in stream:
            pass

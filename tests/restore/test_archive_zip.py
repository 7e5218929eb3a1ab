"""ZIP streams read back by zipfile and tested and extracted by 7-Zip, against the source tree."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import time
import zipfile

import pytest

from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.archive import ArchiveOptions, archive_stream
from filerestore.restore.archive_members import Member
from filerestore.restore.archive_zip import zip_info
from tests.restore.archive_checks import (
    ROOTS,
    ZIP_X_ROOTS,
    clash_contents,
    compare_extracted,
    expected_tree,
    perms,
    ut_mtime,
    write_stream,
    zip_name,
)


@pytest.mark.parametrize("deflate", [False, True])
def test_zip_members_match_source(fs, source, deflate):
    data = b"".join(archive_stream(fs, ROOTS, "zip", ArchiveOptions(deflate=deflate)))
    expected = {zip_name(k): v for k, v in expected_tree(source, ROOTS).items()}
    # the escaped non-UTF-8 name meets the real "latin1-caf%E9.txt" beside it
    clash = "unicode/latin1-caf%E9.txt"
    contents = clash_contents(source)
    del expected[clash]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        infos = {i.filename.rstrip("/"): i for i in zf.infolist()}
        assert {zf.read(infos[n]) for n in (clash, "unicode/latin1-caf%E9 (2).txt")} == contents
        del infos[clash], infos["unicode/latin1-caf%E9 (2).txt"]
        assert set(infos) == set(expected)
        for name, info in infos.items():
            st = expected[name].lstat()
            mode = info.external_attr >> 16
            assert stat.S_IFMT(mode) == stat.S_IFMT(st.st_mode), name
            assert stat.S_IMODE(mode) == (0o777 if stat.S_ISLNK(st.st_mode) else perms(st)), name
            assert info.create_system == 3
            seconds = st.st_mtime_ns // 10**9
            assert ut_mtime(info.extra) == seconds, name
            assert info.date_time == (*time.gmtime(seconds)[:5], time.gmtime(seconds)[5] // 2 * 2)
            if stat.S_ISLNK(st.st_mode):
                assert zf.read(info) == os.fsencode(str(expected[name].readlink()))
            elif stat.S_ISREG(st.st_mode):
                assert zf.read(info) == expected[name].read_bytes(), name
                assert info.compress_type == (
                    zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                )
                assert info.extract_version >= 45  # ZIP64 on every file
            if not name.isascii():
                assert info.flag_bits & 0x800  # UTF-8 name


def test_zip_tested_and_extracted_by_7zip(fs, source, tmp_path):
    archive = write_stream(archive_stream(fs, ZIP_X_ROOTS, "zip"), tmp_path / "a.zip")
    test = subprocess.run(["7zz", "t", archive], capture_output=True, text=True)
    assert test.returncode == 0 and "Everything is Ok" in test.stdout, test.stdout
    dest = tmp_path / "x"
    run = subprocess.run(["7zz", "x", f"-o{dest}", archive], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    expected = {zip_name(k): v for k, v in expected_tree(source, ZIP_X_ROOTS).items()}
    # 7-Zip applies its umask to directories: their modes and times are checked in the
    # header test above, files and links here
    clash = "unicode/latin1-caf%E9.txt"
    both = clash_contents(source)
    del expected[clash]
    got = {(dest / clash).read_bytes(), (dest / "unicode/latin1-caf%E9 (2).txt").read_bytes()}
    assert got == both
    (dest / clash).unlink()
    (dest / "unicode/latin1-caf%E9 (2).txt").unlink()
    compare_extracted(dest, expected, dirs=False)


def test_zip_times_before_1980_keep_the_exact_time_in_the_extra_field():
    entry = Entry(name="old", path="/old", kind=EntryKind.FILE, size=0, mode=0o100600, mtime_ns=0)
    info = zip_info(Member("old", entry), deflate=False)
    assert info.date_time == (1980, 1, 1, 0, 0, 0)  # the DOS field cannot go lower
    assert ut_mtime(info.extra) == 0
    assert info.external_attr >> 16 == 0o100600

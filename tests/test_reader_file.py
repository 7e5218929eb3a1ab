"""The file object libyal volumes read through (blockio.ReaderFile): every read, small
(served from its chunk) or large, at chunk boundaries and at the end of the volume, gives
the reader's bytes."""

from __future__ import annotations

import random

import pytest

from filerestore.blockio import BytesReader, ReaderFile

SIZE = 3 * ReaderFile.CHUNK + 1000  # the last chunk is short


def test_reads_match_the_reader() -> None:
    data = random.Random(1).randbytes(SIZE)
    f = ReaderFile(BytesReader(data))
    chunk = ReaderFile.CHUNK
    cases = [
        (0, 512),
        (chunk - 100, 512),  # straddles a chunk boundary
        (chunk, 4096),
        (SIZE - 10, 512),  # runs past the end: short
        (SIZE, 16),  # at the end: empty
        (SIZE + 5000, 16),  # past the end: empty
        (100, 3 * chunk),  # large: straight to the reader
    ]
    rnd = random.Random(2)
    cases += [(rnd.randrange(SIZE), rnd.choice([1, 512, 1024, 4096, 4097])) for _ in range(500)]
    for pos, size in cases:
        assert f.seek(pos) == pos
        got = f.read(size)
        assert got == data[pos : pos + size], (pos, size)
        assert f.tell() == f.get_offset() == pos + len(got)


def test_sequential_reads_and_seek_modes() -> None:
    data = bytes(range(256)) * 1000
    f = ReaderFile(BytesReader(data))
    assert f.get_size() == len(data)
    assert b"".join(f.read(1000) for _ in range(256)) == data
    assert f.read(10) == b""
    assert f.seek(-10, 2) == len(data) - 10
    assert f.read() == data[-10:]
    f.seek(5)
    assert f.seek(7, 1) == 12
    buf = bytearray(4)
    assert f.readinto(buf) == 4 and bytes(buf) == data[12:16]
    with pytest.raises(OSError):
        f.seek(-1)
    with pytest.raises(ValueError):
        f.seek(0, 3)

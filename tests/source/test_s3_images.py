"""QCOW2 images and backing chains read from a moto S3 server, against qemu-img's output.

The chains and variants are the image layer's own recipes (tests/imagebuild/qcow.py),
uploaded as objects; the expected disk is ``qemu-img convert`` of the local copy.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from filerestore.errors import (
    BackingFileRefusedError,
    CorruptImageError,
    ImageNotFoundError,
    RepositoryEscapeError,
)
from filerestore.image.disk import open_backup
from filerestore.source import S3File
from tests.image.conftest import sha256_of_file, sha256_of_reader
from tests.imagebuild import hostile, qcow
from tests.s3server.fixtures import upload_tree
from tests.source.conftest import StoreFactory


def check_random_reads(disk: Any, expected: Path, count: int = 200) -> None:
    rng = random.Random(11)
    with expected.open("rb") as fh:
        for _ in range(count):
            offset = rng.randrange(disk.size)
            length = rng.choice([1, 511, 4096, 65537, 300_000])
            fh.seek(offset)
            assert disk.read_at(offset, length) == fh.read(length), (offset, length)


@pytest.mark.parametrize("kind", qcow.CHAIN_KINDS)
def test_chain_reads_as_qemu_does(kind: str, s3: Any, bucket: str, store: StoreFactory) -> None:
    directory = qcow.chain(kind)
    upload_tree(s3, bucket, "backups/vm", directory)
    expected = qcow.qemu_raw(directory / "top.qcow2")
    with open_backup(store("backups/vm"), "top.qcow2") as disk:
        assert disk.size == expected.stat().st_size
        assert disk.chain[0].name == "top.qcow2"
        assert sha256_of_reader(disk) == sha256_of_file(expected)
        check_random_reads(disk, expected)


@pytest.mark.parametrize("variant", ["v2-512", "v3-2m", "zlib", "zstd", "extended-l2", "snapshot"])
def test_variant_reads_as_qemu_does(
    variant: str, s3: Any, bucket: str, store: StoreFactory
) -> None:
    image = qcow.VARIANTS[variant]()
    s3.upload_file(str(image), bucket, "img.qcow2")
    expected = qcow.qemu_raw(image)
    with open_backup(store(), "img.qcow2") as disk:
        assert sha256_of_reader(disk) == sha256_of_file(expected)


def test_files_are_named_by_key_and_located_by_url(
    s3: Any, bucket: str, store: StoreFactory
) -> None:
    directory = qcow.chain("subdir")
    upload_tree(s3, bucket, "r", directory)
    with open_backup(store("r"), "top.qcow2") as disk:
        names = [link.name for link in disk.chain]
        assert names[-1] == "sub/base.qcow2"
        base = store("r").open("sub/base.qcow2")
        assert isinstance(base, S3File)
        assert base.location == f"s3://{bucket}/r/sub/base.qcow2"
        assert base.identity.key == "r/sub/base.qcow2"
        assert base.size == (directory / "sub" / "base.qcow2").stat().st_size


def test_missing_objects_are_not_found(s3: Any, bucket: str, store: StoreFactory) -> None:
    directory = qcow.chain("flat")
    s3.upload_file(str(directory / "top.qcow2"), bucket, "vm/top.qcow2")  # its chain is absent
    with pytest.raises(ImageNotFoundError):
        store("vm").open("nothing.qcow2")
    with pytest.raises(ImageNotFoundError, match="backing file"):
        open_backup(store("vm"), "top.qcow2")


def test_a_truncated_object_is_corrupt(s3: Any, bucket: str, store: StoreFactory) -> None:
    s3.upload_file(str(qcow.truncated()), bucket, "t.qcow2")
    with pytest.raises(CorruptImageError), open_backup(store(), "t.qcow2") as disk:
        sha256_of_reader(disk)


@pytest.mark.parametrize(
    ("backing", "why"), hostile.STORE_ESCAPES, ids=[w for _, w in hostile.STORE_ESCAPES]
)
def test_hostile_backing_names_are_refused(
    backing: str, why: str, s3: Any, bucket: str, store: StoreFactory
) -> None:
    """Every name reaches a real object, so the refusal is by name, not a missing file."""
    base = hostile.qcow2_image()
    s3.create_bucket(Bucket="other-bucket")
    for key in ("repo/base.qcow2", "repo/vm2/base.qcow2", "repo/vm1x/base.qcow2", "base.qcow2"):
        s3.put_object(Bucket=bucket, Key=key, Body=base)
    s3.put_object(Bucket="other-bucket", Key="repo/vm1/base.qcow2", Body=base)
    s3.put_object(Bucket=bucket, Key="repo/vm1/base.qcow2", Body=base)
    name = backing.replace("BUCKET", bucket).encode()
    s3.put_object(Bucket=bucket, Key="repo/vm1/top.qcow2", Body=hostile.qcow2_image(backing=name))
    s3.put_object(
        Bucket=bucket, Key="repo/vm1/ok.qcow2", Body=hostile.qcow2_image(backing=b"base.qcow2")
    )
    repo = store("repo/vm1")
    with open_backup(repo, "ok.qcow2") as disk:  # the same image with a plain name opens
        assert [link.name for link in disk.chain] == ["ok.qcow2", "base.qcow2"]
    with pytest.raises(BackingFileRefusedError):
        open_backup(repo, "top.qcow2")
    with pytest.raises(RepositoryEscapeError):
        repo.open(backing.replace("BUCKET", bucket))


def test_an_empty_object_opens_empty(s3: Any, bucket: str, store: StoreFactory) -> None:
    """A ranged GET of byte 0 is refused (416) on an empty object: the open falls back to
    a HEAD, and the file reads as zero bytes."""
    s3.put_object(Bucket=bucket, Key="empty.raw", Body=b"")
    f = store().open("empty.raw")
    assert f.size == 0
    assert f.read_at(0, 10) == b""

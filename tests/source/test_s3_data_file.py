"""QCOW2 images with external data files read from a moto S3 server: the data file is an
object named relative to the image's key, under the same prefix rules as a backing file."""

from __future__ import annotations

from typing import Any

import pytest

from filerestore.errors import BackingFileRefusedError
from filerestore.image.disk import open_backup
from tests.image.conftest import sha256_of_file, sha256_of_reader
from tests.imagebuild import data_file as D
from tests.imagebuild.hostile import DATA_FILE_BYTES, data_file_image
from tests.s3server.fixtures import upload_tree
from tests.source.conftest import StoreFactory


@pytest.mark.parametrize("kind", ["data-file-on-base", "on-raw-data-file-base"])
def test_chain_with_data_files_reads_as_qemu_does(
    kind: str, s3: Any, bucket: str, store: StoreFactory
) -> None:
    top = D.chain(kind)
    upload_tree(s3, bucket, "backups/vm", top.parent)
    with open_backup(store("backups/vm"), "top.qcow2") as disk:
        assert [link.parts for link in disk.chain] == [
            (link.data_file,) if link.data_file else () for link in disk.chain
        ]
        assert sha256_of_reader(disk) == sha256_of_file(D.qemu_raw(top))


def test_a_data_file_name_leaving_the_prefix_is_refused(
    s3: Any, bucket: str, store: StoreFactory
) -> None:
    s3.put_object(Bucket=bucket, Key="backups/outside-data.raw", Body=DATA_FILE_BYTES)
    image = data_file_image(b"../outside-data.raw")
    s3.put_object(Bucket=bucket, Key="backups/vm/image.qcow2", Body=image)
    with pytest.raises(BackingFileRefusedError, match=r"data file '\.\./outside-data\.raw'"):
        open_backup(store("backups/vm"), "image.qcow2")

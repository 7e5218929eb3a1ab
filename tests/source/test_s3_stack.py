"""A GPT + ext4 backup read from S3 through the whole stack: image, volume, filesystem.

The image is the CLI tests' (sfdisk + mke2fs -d + qemu-img convert); the expected files are
its source tree, read from the host.
"""

from __future__ import annotations

from typing import Any

from filerestore.restore.stack import open_backup_stack
from tests.fs.treecheck import compare_contents
from tests.imagebuild import gpt_ext4 as images
from tests.s3server.servers import Server, proxy_call
from tests.source.conftest import StoreFactory


def test_gpt_ext4_backup_from_s3_matches_its_tree(
    s3: Any, bucket: str, store: StoreFactory, proxy: Server
) -> None:
    built = images.single_ext4()
    s3.upload_file(str(built.image), bucket, "nightly/vm7/disk.qcow2")
    proxy_call(proxy, "reset")
    with open_backup_stack(store("nightly"), "vm7/disk.qcow2") as stack:
        assert stack.volume.id == "p1"
        assert stack.fs.kind == "ext4"
        names = {e.name for e in stack.fs.list_dir("/")}
        assert names == {p.name for p in built.tree().iterdir()} | {"lost+found"}
        assert compare_contents(built.tree(), stack.fs) == []
    counts = proxy_call(proxy, "stats")
    # every byte came through ranged GETs of the object, none from the host's copy
    assert counts.get("GET", 0) > 0
    assert set(counts) <= {"GET", "HEAD"}


def test_a_cached_backup_replaced_since_opens_the_new_one(
    s3: Any, bucket: str, store: StoreFactory, proxy: Server
) -> None:
    """The second open starts from the cache (the old disk's partition table and
    filesystem) while it checks the ETags in the background; after the object is
    replaced, opening a volume only the new disk has fails on the old one, that failure
    waits for the check, which finds the change, and the stack is opened again from the
    new object."""
    first, second = images.single_ext4(), images.two_ext4()
    s3.upload_file(str(first.image), bucket, "vm/disk.qcow2")
    with open_backup_stack(store("vm"), "disk.qcow2") as stack:
        assert stack.fs.label == "root"
    proxy_call(proxy, "reset")
    with open_backup_stack(store("vm"), "disk.qcow2") as stack:  # unchanged: no GET at all
        assert stack.fs.label == "root"
        stack.image.confirm()  # the open did not wait for its check: this does
    assert proxy_call(proxy, "reset") == {"HEAD": 1}
    s3.upload_file(str(second.image), bucket, "vm/disk.qcow2")
    with open_backup_stack(store("vm"), "disk.qcow2", volume_id="p3") as stack:
        assert stack.fs.label == "beta"
        names = {e.name for e in stack.fs.list_dir("/")}
    assert names == {p.name for p in second.tree(2).iterdir()} | {"lost+found"}

"""Scanning a repository of QCOW2 images with external data files: every image is registered
with its kind and parent, and no data file is registered as a raw backup of its own, even
one named ``*.raw`` or ``*.img`` (a file a scanned disk uses as a part is not a backup)."""

from __future__ import annotations

from tests.catalog.scanning import assert_rescan_adds_nothing, scan_new_repository
from tests.imagebuild import data_file as D
from tests.imagebuild.sparse import copytree_sparse

MiB = 1 << 20
WRITES = ["write -P 0x61 65000 70000", "write -z 1M 64k"]


def test_scan_registers_images_and_not_their_data_files(db, tmp_path):
    root = tmp_path / "repo"
    for vm in ("vm-a", "vm-b", "vm-d", "data"):
        (root / vm).mkdir(parents=True)
    D.create(root / "vm-a" / "disk.qcow2", "disk-data.raw", 4 * MiB, WRITES)
    D.create(root / "vm-b" / "disk.qcow2", "disk.img", 4 * MiB, WRITES, raw=True)
    copytree_sparse(D.chain("on-data-file-base").parent, root / "vm-c")
    # named absolute, in another directory of the repository
    D.create(root / "vm-d" / "disk.qcow2", str(root / "data" / "vm-d.raw"), 4 * MiB, WRITES)
    (root / "vm-e.raw").write_bytes(bytes(MiB))  # a raw backup no image names: registered
    found = scan_new_repository(db, root)
    assert sorted(found) == [
        "vm-a/disk.qcow2",
        "vm-b/disk.qcow2",
        "vm-c/base.qcow2",
        "vm-c/top.qcow2",
        "vm-d/disk.qcow2",
        "vm-e.raw",
    ]  # no disk-data.raw, disk.img, base-data.raw, data/vm-d.raw: data files of the disks
    kinds = {path: "full" for path in found} | {"vm-c/top.qcow2": "incremental"}
    assert {path: b.kind for path, b in found.items()} == kinds
    top = found["vm-c/top.qcow2"]
    assert top.parent_backup_id == found["vm-c/base.qcow2"].id
    assert_rescan_adds_nothing(db, found)

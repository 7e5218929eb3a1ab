"""Scanning a repository of VMDK, VHD and VHDX backups (and QCOW2 on them): every disk is
registered once with its kind and parent; extent files of a disk are not backups."""

from __future__ import annotations

from pathlib import Path

from tests.catalog.scanning import assert_rescan_adds_nothing, scan_new_repository
from tests.imagebuild import formats as F
from tests.imagebuild.catalog_repo import qemu_info
from tests.imagebuild.sparse import copytree_sparse


def _copy_dir(src: Path, dest: Path) -> None:
    copytree_sparse(src, dest)


def test_scan_registers_every_format_with_kind_and_parent(db, tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _copy_dir(F.chain("vmdk").parent, root / "vm-vmdk")
    _copy_dir(F.chain("qcow2-on-vhdx").parent, root / "vm-hyperv")
    _copy_dir(F.VARIANTS["vmdk-twoGbMaxExtentSparse"]().parent, root / "vm-split")
    _copy_dir(F.VARIANTS["vmdk-monolithicFlat"]().parent, root / "vm-flat")
    _copy_dir(F.VARIANTS["vpc-fixed"]().parent, root / "vm-fixed")
    _copy_dir(F.differencing("vhdx").parent, root / "vm-diff")
    (root / "vm-diff" / "expected.raw").unlink()
    found = scan_new_repository(db, root)
    assert sorted(found) == [
        "vm-diff/base.vhdx",
        "vm-diff/child.vhdx",
        "vm-fixed/disk.vhd",
        "vm-flat/disk.vmdk",
        "vm-hyperv/base.vhdx",
        "vm-hyperv/inc1.qcow2",
        "vm-hyperv/top.qcow2",
        "vm-split/disk.vmdk",
        "vm-vmdk/base.vmdk",
        "vm-vmdk/inc1.vmdk",
        "vm-vmdk/top.vmdk",
    ]  # no disk-s001.vmdk, no disk-flat.vmdk: parts of vm-split and vm-flat
    parents = {
        "vm-vmdk/top.vmdk": "vm-vmdk/inc1.vmdk",
        "vm-vmdk/inc1.vmdk": "vm-vmdk/base.vmdk",
        "vm-hyperv/top.qcow2": "vm-hyperv/inc1.qcow2",
        "vm-hyperv/inc1.qcow2": "vm-hyperv/base.vhdx",
        "vm-diff/child.vhdx": "vm-diff/base.vhdx",
    }
    by_id = {b.id: b.path for b in found.values()}
    for path, backup in found.items():
        want = parents.get(path)
        assert backup.kind == ("incremental" if want else "full"), path
        assert (by_id.get(backup.parent_backup_id) if backup.parent_backup_id else None) == want
        if path.endswith((".vmdk", ".qcow2")):  # qemu reads these by probing
            info = qemu_info(root / path)
            assert backup.virtual_size == info["virtual-size"], path
            assert ("backing-filename" in info) == bool(want), path
    assert_rescan_adds_nothing(db, found)

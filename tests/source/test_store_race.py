"""The check-then-open race: a directory on the path swapped for a link pointing outside.

One thread swaps ``repo/vm`` between the real directory and a symbolic link to a directory
outside (two renames each way, so the name always exists or briefly does not); the main
thread opens ``vm/disk.qcow2`` thousands of times through the image layer. The outcome
asserted is safety only, whatever the timing: no open ever yields the outside image's file
or bytes, and every refusal is a FileRestoreError.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from filerestore.errors import FileRestoreError, ImageNotFoundError, RepositoryEscapeError
from filerestore.image import open_image
from tests.imagebuild.hostile import CS, DATA, qcow2_image

OPENS = 3000


def outside_image() -> bytes:
    data = bytearray(qcow2_image())
    data[DATA * CS : (DATA + 1) * CS] = b"\xee" * CS  # the same layout, other guest bytes
    return bytes(data)


def test_swapping_a_directory_for_an_outside_link_never_leaks(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    (repo / "vm").mkdir(parents=True)
    (outside / "vm").mkdir(parents=True)
    (repo / "vm" / "disk.qcow2").write_bytes(qcow2_image())
    (outside / "vm" / "disk.qcow2").write_bytes(outside_image())
    inside_ino = (repo / "vm" / "disk.qcow2").stat().st_ino
    outside_ino = (outside / "vm" / "disk.qcow2").stat().st_ino
    (repo / "evil").symlink_to(outside / "vm")
    stop = threading.Event()
    swapped = threading.Event()
    swaps = [0]
    failures: list[BaseException] = []

    def swapper() -> None:
        try:
            while not stop.is_set():
                os.rename(repo / "vm", repo / "vm.real")
                os.rename(repo / "evil", repo / "vm")  # vm is now the link outside
                os.rename(repo / "vm", repo / "evil")
                os.rename(repo / "vm.real", repo / "vm")
                swaps[0] += 1
                swapped.set()
        except BaseException as exc:
            failures.append(exc)
            swapped.set()

    thread = threading.Thread(target=swapper)
    thread.start()
    outcomes = {"inside": 0, "refused": 0, "not found": 0}
    try:
        assert swapped.wait(30)
        for _ in range(OPENS):
            try:
                with open_image(repo / "vm" / "disk.qcow2", repo) as disk:
                    data = disk.read_at(0, CS)
                    assert disk.chain[0].name == "vm/disk.qcow2"
            except RepositoryEscapeError:
                outcomes["refused"] += 1
                continue
            except ImageNotFoundError:
                outcomes["not found"] += 1
                continue
            except FileRestoreError as exc:  # any other refusal must still be in the tree
                raise AssertionError(f"unexpected refusal {exc!r}") from exc
            assert data == qcow2_image()[DATA * CS : (DATA + 1) * CS]
            assert b"\xee" * 16 not in data
            outcomes["inside"] += 1
    finally:
        stop.set()
        thread.join()
    assert not failures, failures
    assert swaps[0] > 0
    assert sum(outcomes.values()) == OPENS
    assert inside_ino != outside_ino

"""LocalStore confines every open to its repository, whatever symbolic links the host holds.

Each test builds its own hostile repository with real symbolic links, FIFOs and device
nodes. Where the kernel's own path walk is the reference (the 40-link limit), the test asks
the kernel too.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from filerestore.errors import (
    ImageNotFoundError,
    RepositoryEscapeError,
    RepositoryIOError,
)
from filerestore.image import open_image
from filerestore.source import LocalStore
from tests.imagebuild.eio import failing_repository
from tests.imagebuild.hostile import qcow2_image

INSIDE = b"inside the repository\n"
OUTSIDE = b"outside the repository: must never be served\n"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """``repo/`` with ``disk.qcow2`` and ``sub/disk.qcow2``; ``outside/`` beside it."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    (repo / "sub").mkdir(parents=True)
    (outside / "sub").mkdir(parents=True)
    for base, data in ((repo, INSIDE), (outside, OUTSIDE)):
        (base / "disk.qcow2").write_bytes(data)
        (base / "sub" / "disk.qcow2").write_bytes(data)
    return repo, outside


def read_all(store: LocalStore, name: str) -> bytes:
    with store.open(name) as f:
        return f.pread(0, f.size, "test")


def test_plain_names_open_inside(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    with LocalStore(repo) as store:
        assert read_all(store, "disk.qcow2") == INSIDE
        assert read_all(store, "sub/disk.qcow2") == INSIDE
        assert read_all(store, "sub/../disk.qcow2") == INSIDE  # '..' that stays inside
        f = store.open("sub/./disk.qcow2")
        with f:
            assert f.name == "sub/disk.qcow2"
            st = (repo / "sub" / "disk.qcow2").stat()
            assert (f.identity.device, f.identity.inode) == (st.st_dev, st.st_ino)


@pytest.mark.parametrize(
    ("target", "below"),
    [("disk.qcow2", ""), ("sub", "/disk.qcow2")],
    ids=["the top image", "a directory on the path"],
)
def test_a_symlink_to_outside_is_refused(
    layout: tuple[Path, Path], target: str, below: str
) -> None:
    """The link (absolute, and relative) is the image itself or a directory above it."""
    repo, outside = layout
    (repo / "link").symlink_to(outside / target)
    (repo / "link-rel").symlink_to(f"../outside/{target}")
    with LocalStore(repo) as store:
        for name in (f"link{below}", f"link-rel{below}"):
            with pytest.raises(RepositoryEscapeError, match="outside the repository"):
                store.open(name)
            with pytest.raises(RepositoryEscapeError):
                store.stat(name)


def test_links_that_stay_inside_are_followed(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    (repo / "latest.qcow2").symlink_to("sub/disk.qcow2")
    (repo / "absolute.qcow2").symlink_to(repo.resolve() / "sub" / "disk.qcow2")
    (repo / "sub" / "up.qcow2").symlink_to("../disk.qcow2")
    (repo / "daily").symlink_to("sub")
    (repo / "daily-abs").symlink_to(repo.resolve() / "sub")
    with LocalStore(repo) as store:
        expected = {
            "latest.qcow2": "sub/disk.qcow2",
            "absolute.qcow2": "sub/disk.qcow2",
            "sub/up.qcow2": "disk.qcow2",
            "daily/disk.qcow2": "sub/disk.qcow2",
            "daily-abs/disk.qcow2": "sub/disk.qcow2",
        }
        for name, canonical in expected.items():
            f = store.open(name)
            with f:
                assert f.name == canonical, name
                assert f.pread(0, f.size, "test") == INSIDE
            assert store.stat(name).name == canonical


def test_dotdot_never_climbs_out(layout: tuple[Path, Path]) -> None:
    repo, outside = layout
    (repo / "sub" / "escape.qcow2").symlink_to("../../outside/disk.qcow2")
    with LocalStore(repo) as store:
        for name in ("../outside/disk.qcow2", "sub/../../outside/disk.qcow2"):
            with pytest.raises(RepositoryEscapeError, match="climbs above the root"):
                store.open(name)
        with pytest.raises(RepositoryEscapeError):
            store.open("sub/escape.qcow2")
        with pytest.raises(RepositoryEscapeError, match="outside the repository"):
            store.open(str(outside / "disk.qcow2"))  # an absolute name outside the root
        # a backing name is relative to its image's directory, and still cannot climb out
        with pytest.raises(RepositoryEscapeError):
            store.open("../../outside/disk.qcow2", relative_to="sub/disk.qcow2")


def open_in_thread(store: LocalStore, name: str) -> BaseException | None:
    """Open ``name`` on another thread; a FIFO opened for reading would block it forever."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            store.open(name).close()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), f"opening {name} blocked"
    return outcome[0]


def test_fifo_and_devices_are_refused_without_blocking(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    os.mkfifo(repo / "fifo.qcow2")
    (repo / "to-fifo.qcow2").symlink_to("fifo.qcow2")
    (repo / "zero.qcow2").symlink_to("/dev/zero")
    os.mknod(repo / "null.qcow2", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
    with LocalStore(repo) as store:
        for name in ("fifo.qcow2", "to-fifo.qcow2", "null.qcow2"):
            exc = open_in_thread(store, name)
            assert isinstance(exc, RepositoryEscapeError), (name, exc)
            assert "not a regular file" in str(exc)
        exc = open_in_thread(store, "zero.qcow2")
        assert isinstance(exc, RepositoryEscapeError) and "outside" in str(exc)
        with pytest.raises(ImageNotFoundError, match="directory"):
            store.open("sub")


def test_nul_bytes_and_bad_names(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    with LocalStore(repo) as store:
        with pytest.raises(RepositoryEscapeError, match="NUL"):
            store.open("disk.qcow2\0/etc/passwd")
        for name in ("", "sub/", "."):
            with pytest.raises(ImageNotFoundError):
                store.open(name)
        with pytest.raises(ImageNotFoundError, match="not a directory"):
            store.open("disk.qcow2/x")
        with pytest.raises(ImageNotFoundError, match="too long"):
            store.open("x" * 300)


def test_symlink_loops_are_refused(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    (repo / "a").symlink_to("b")
    (repo / "b").symlink_to("a")
    (repo / "self").symlink_to("self")
    (repo / "dirloop").symlink_to("dirloop/x")
    with LocalStore(repo) as store:
        for name in ("a", "self", "dirloop", "a/disk.qcow2"):
            with pytest.raises(RepositoryEscapeError, match="loop"):
                store.open(name)


@pytest.mark.parametrize("links", [40, 41])
def test_link_limit_is_the_kernels(layout: tuple[Path, Path], links: int) -> None:
    """A chain of n links opens here exactly when the kernel's own walk opens it."""
    repo, _ = layout
    (repo / "l0").symlink_to("disk.qcow2")
    for i in range(1, links):
        (repo / f"l{i}").symlink_to(f"l{i - 1}")
    top = f"l{links - 1}"
    try:
        os.close(os.open(repo / top, os.O_RDONLY))
        kernel_ok = True
    except OSError as exc:
        assert exc.errno == errno.ELOOP
        kernel_ok = False
    with LocalStore(repo) as store:
        if kernel_ok:
            assert read_all(store, top) == INSIDE
        else:
            with pytest.raises(RepositoryEscapeError, match="loop"):
                store.open(top)
    assert kernel_ok == (links == 40)


def test_missing_files_are_not_found(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    (repo / "dangling.qcow2").symlink_to("nothing.qcow2")
    with LocalStore(repo) as store:
        for name in ("nothing.qcow2", "dangling.qcow2", "nodir/disk.qcow2"):
            with pytest.raises(ImageNotFoundError) as info:
                store.open(name)
            assert str(repo) not in str(info.value)  # no host path in the message
    with pytest.raises(ImageNotFoundError) as info:
        LocalStore(repo / "no-such-root")
    assert str(repo) not in str(info.value)


def run_as_nobody(repo: Path, name: str) -> str:
    """Open ``name`` as an unprivileged user in a forked child (root reads anything): the
    class name of the error, or "ok"."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, try, report, leave without cleanup handlers
        result = "ok"
        try:
            os.setgid(65534)
            os.setuid(65534)
            with LocalStore(repo) as store:
                read_all(store, name)
        except BaseException as exc:
            result = f"{type(exc).__name__}: {exc}"
        os.write(write_fd, result.encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        result = pipe.read().decode()
    os.waitpid(pid, 0)
    return result


@pytest.mark.root  # switches to an unprivileged user
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_permission_denied_is_a_repository_io_error(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """EACCES is the host refusing to read a repository (503), not a missing file (404)."""
    base = tmp_path_factory.mktemp("eacces")
    for p in (base, *base.parents):  # pytest's temporary root is private to root
        if p == Path("/"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o005)
    repo = base / "repo"
    (repo / "locked").mkdir(parents=True)
    (repo / "locked" / "disk.qcow2").write_bytes(INSIDE)
    (repo / "secret.qcow2").write_bytes(INSIDE)
    (repo / "readable.qcow2").write_bytes(INSIDE)
    os.chmod(repo, 0o755)
    os.chmod(repo / "readable.qcow2", 0o644)
    os.chmod(repo / "secret.qcow2", 0o000)
    os.chmod(repo / "locked", 0o700)  # no search permission for others
    assert run_as_nobody(repo, "readable.qcow2") == "ok"  # the child can read at all
    for name in ("secret.qcow2", "locked/disk.qcow2"):
        result = run_as_nobody(repo, name)
        assert result.startswith("RepositoryIOError: "), result
        assert "Permission denied" in result
        assert str(repo) not in result


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a loop device")
def test_eio_is_a_repository_io_error(tmp_path: Path) -> None:
    """A disk that fails reads (EIO from the kernel) is a RepositoryIOError (503), never a
    bare OSError (which reached the API as a 500) and never "not found"."""
    image = qcow2_image()
    with failing_repository(tmp_path, {"disk.qcow2": image}) as repo:
        with LocalStore(repo.root) as store:
            assert read_all(store, "disk.qcow2") == image
        repo.fail()
        with LocalStore(repo.root) as store, store.open("disk.qcow2") as f:
            with pytest.raises(RepositoryIOError, match="Input/output error") as info:
                f.pread(0, 4096, "header")
            assert str(repo.root) not in str(info.value)
        with pytest.raises(RepositoryIOError, match="Input/output error"):
            open_image(repo.root / "disk.qcow2", repo.root)

"""inspect, ls, stat and cat against a GPT + ext4 image, checked against its source tree."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli.runner import SCRIPT, fails, json_out, ok, run
from tests.fs.treecheck import kind_of
from tests.imagebuild import gpt_ext4 as images
from tests.imagebuild.sparse import copy_sparse

# mke2fs creates it; it is not in the source tree
EXT4_EXTRA = {"lost+found"}


def expected_entry(source: Path, guest_path: str) -> dict[str, object]:
    """The Entry fields the source file at ``source`` must come back with."""
    st = source.lstat()
    kind = kind_of(st).value
    want: dict[str, object] = {
        "name": source.name,
        "path": guest_path,
        "kind": kind,
        "mode": st.st_mode,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime_ns": st.st_mtime_ns,
        "target": str(source.readlink()) if kind == "symlink" else None,
    }
    if kind != "dir":
        want["size"] = st.st_size
    if kind == "file":
        want["nlink"] = st.st_nlink
    return want


def assert_matches(got: dict[str, object], want: dict[str, object]) -> None:
    subset = {key: got.get(key) for key in want}
    assert subset == want


# --- inspect ---------------------------------------------------------------------------------


def test_inspect_json_matches_sfdisk_and_qemu_img(two: images.Built) -> None:
    desc = json.loads(ok("inspect", two.image, "--json"))
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", two.image],
            check=True,
            capture_output=True,
        ).stdout
    )
    assert [(c["format"], c["virtual_size"]) for c in desc["chain"]] == [
        ("qcow2", info["virtual-size"])
    ]
    assert Path(desc["chain"][0]["path"]) == two.image.resolve()
    table = two.layout()["partitiontable"]
    parts = table["partitions"]  # type: ignore[index]
    assert [v["id"] for v in desc["volumes"]] == ["p1", "p2", "p3"]
    for vol, part in zip(desc["volumes"], parts, strict=True):
        assert vol["offset"] == part["start"] * 512
        assert vol["size"] == part["size"] * 512
        assert vol["label"] == part["name"]
        assert vol["type"].lower() == part["type"].lower()
    # the recipe: ext4 labelled like the partition, and p2 left without a filesystem
    assert [(v["filesystem_type"], v["filesystem_label"]) for v in desc["volumes"]] == [
        ("ext4", "alpha"),
        (None, None),
        ("ext4", "beta"),
    ]


def test_inspect_text_shows_chain_and_volumes(two: images.Built) -> None:
    out = ok("inspect", two.image).decode()
    assert "qcow2" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("p")]
    assert [r[0] for r in rows] == ["p1", "p2", "p3"]
    assert "ext4" in rows[0] and "alpha" in rows[0]
    assert "ext4" not in rows[1]


def test_inspect_backing_chain_and_repository(tmp_path: Path, ext4: images.Built) -> None:
    repo = tmp_path / "repo"
    (repo / "base").mkdir(parents=True)
    (repo / "vm").mkdir()
    base = repo / "base" / "full.qcow2"
    copy_sparse(ext4.image, base)
    top = repo / "vm" / "incr.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "../base/full.qcow2", "-F", "qcow2", top],
        check=True,
    )
    # by default backing files must stay in the image's own directory
    fails(5, "inspect", top)
    desc = json.loads(ok("inspect", top, "--repository", repo, "--json"))
    chain = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--backing-chain", "--output=json", top],
            check=True,
            capture_output=True,
        ).stdout
    )
    assert [(Path(c["path"]), c["format"], c["virtual_size"]) for c in desc["chain"]] == [
        (Path(c["filename"]).resolve(), c["format"], c["virtual-size"]) for c in chain
    ]
    assert desc["chain"][0]["backing_name"] == "../base/full.qcow2"
    # the overlay reads through to the base
    assert ok("cat", top, "/hello.txt", "--repository", repo) == b"hello, world\n"


# --- ls ----------------------------------------------------------------------------------------


def test_ls_json_root_matches_source(ext4: images.Built) -> None:
    tree = ext4.tree()
    entries = json_out("ls", ext4.image, "/", "--json")
    names = {e["name"] for e in entries}
    assert names == {p.name for p in (tree).iterdir()} | EXT4_EXTRA
    for entry in entries:
        if entry["name"] in EXT4_EXTRA:
            continue
        assert_matches(entry, expected_entry(tree / entry["name"], "/" + entry["name"]))


def test_ls_recursive_json_covers_the_whole_tree(ext4: images.Built) -> None:
    tree = ext4.tree()
    entries = json_out("ls", ext4.image, "/", "-R", "--json")
    got = {e["path"]: e for e in entries if not e["path"].startswith("/lost+found")}
    want = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            source = Path(dirpath) / name
            want["/" + source.relative_to(tree).as_posix()] = source
    assert set(got) == set(want)
    for path, source in want.items():
        assert_matches(got[path], expected_entry(source, path))


def test_ls_non_utf8_name_round_trips(ext4: images.Built) -> None:
    entries = json_out("ls", ext4.image, "/unicode", "--json")
    bad = os.fsdecode(b"latin1-caf\xe9.txt")
    assert bad in {e["name"] for e in entries}
    for entry in entries:
        source = ext4.tree() / "unicode" / entry["name"]
        assert ok("cat", ext4.image, entry["path"]) == source.read_bytes()


def test_ls_text_is_ls_l(ext4: images.Built) -> None:
    out = ok("ls", ext4.image, "/docs").decode("utf-8", "surrogateescape")
    lines = {
        line.split()[-1] if "->" not in line else line.split()[-3]: line
        for line in out.splitlines()
    }
    assert set(lines) == {p.name for p in (ext4.tree() / "docs").iterdir()}
    tree = ext4.tree() / "docs"
    for name, line in lines.items():
        st = (tree / name).lstat()
        assert line.split()[0] == stat.filemode(st.st_mode)
        if stat.S_ISREG(st.st_mode):
            assert str(st.st_size) in line.split()
    assert lines["link-escape"].endswith("-> ../../../../etc/passwd")


def test_ls_follows_a_symlink_to_a_directory(ext4: images.Built) -> None:
    via_link = {e["name"] for e in json_out("ls", ext4.image, "/link-to-dir", "--json")}
    assert via_link == {p.name for p in (ext4.tree() / "docs").iterdir()}


def test_ls_of_a_file_shows_the_file(ext4: images.Built) -> None:
    (entry,) = json_out("ls", ext4.image, "/docs/data.bin", "--json")
    assert_matches(entry, expected_entry(ext4.tree() / "docs" / "data.bin", "/docs/data.bin"))


def test_ls_picks_a_volume(two: images.Built) -> None:
    for vol, index in (("p1", 0), ("p3", 2)):
        names = {e["name"] for e in json_out("ls", two.image, "--volume", vol, "--json")}
        assert names == {p.name for p in (two.tree(index)).iterdir()} | EXT4_EXTRA


# --- stat ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/hello.txt", "/docs", "/docs/suid-tool", "/shared-tmp", "/link-absolute", "/link-dangling"],
)
def test_stat_json_matches_source(ext4: images.Built, path: str) -> None:
    got = json.loads(ok("stat", ext4.image, path, "--json"))
    assert_matches(got, expected_entry(ext4.tree() / path.lstrip("/"), path))


def test_stat_dereference_follows_inside_the_guest(ext4: images.Built) -> None:
    got = json.loads(ok("stat", ext4.image, "/link-absolute", "-L", "--json"))
    source = ext4.tree() / "docs" / "sub" / "nested.txt"
    assert_matches(got, expected_entry(source, "/docs/sub/nested.txt") | {"name": "nested.txt"})


def test_stat_text(ext4: images.Built) -> None:
    out = ok("stat", ext4.image, "/docs/script.sh").decode()
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["size"].strip() == str((ext4.tree() / "docs" / "script.sh").stat().st_size)
    assert fields["mode"].strip() == "0755 (-rwxr-xr-x)"
    assert fields["kind"].strip() == "file"


# --- cat -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/hello.txt", "/empty", "/docs/data.bin", "/sparse.bin", "/" + "L" * 251 + ".txt"]
)
def test_cat_matches_source(ext4: images.Built, path: str) -> None:
    assert ok("cat", ext4.image, path) == (ext4.tree() / path.lstrip("/")).read_bytes()


def test_cat_follows_symlinks_inside_the_guest(ext4: images.Built) -> None:
    tree = ext4.tree()
    assert ok("cat", ext4.image, "/link-relative") == (tree / "docs" / "readme.md").read_bytes()
    assert ok("cat", ext4.image, "/link-absolute") == (tree / "docs/sub/nested.txt").read_bytes()
    assert ok("cat", ext4.image, "/link-to-dir/readme.md") == (tree / "docs/readme.md").read_bytes()
    # /etc/passwd is looked up in the guest, where there is none
    fails(3, "cat", ext4.image, "/link-etc-passwd")


def test_cat_into_a_closed_pipe_is_quiet(ext4: images.Built) -> None:
    proc = subprocess.Popen(
        [SCRIPT, "cat", ext4.image, "/docs/data.bin"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(100)
    proc.stdout.close()
    err = proc.stderr.read()
    code = proc.wait(timeout=60)
    assert head == (ext4.tree() / "docs" / "data.bin").read_bytes()[:100]
    assert err == b""
    assert code == 1


def test_help_of_every_command() -> None:
    for command in ("inspect", "ls", "stat", "cat", "get"):
        proc = run(command, "--help")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"Usage: filerestore {command} ".encode())
    top = run("--help")
    assert top.returncode == 0
    for command in ("inspect", "ls", "stat", "cat", "get"):
        assert f" {command} ".encode() in top.stdout


def test_json_is_one_indented_document(ext4: images.Built) -> None:
    cases: list[tuple[list[str | Path], type]] = [
        (["inspect", ext4.image], dict),
        (["stat", ext4.image, "/hello.txt"], dict),
        (["ls", ext4.image, "/docs"], list),
        (["ls", ext4.image, "/docs", "-R"], list),
        (["ls", ext4.image, "/hello.txt"], list),
    ]
    for args, kind in cases:
        out = ok(*args, "--json")
        data = json.loads(out)
        assert out.decode() == json.dumps(data, indent=2, ensure_ascii=True) + "\n", args
        assert isinstance(data, kind)

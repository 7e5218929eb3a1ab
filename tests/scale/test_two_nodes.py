# ruff: noqa: F811 - pytest fixtures imported from tests/dbfixtures.py are arguments
"""Scale-out: two `filerestore serve` instances (two workers each) on one PostgreSQL, one S3
repository (SeaweedFS), behind HAProxy configured as docs/deployment.md says.

- any instance serves any session: mounted through one, listed and downloaded through the
  other, which opens the backup itself from the session's row;
- the balancer keeps a session on one instance: every request of it is answered by the same
  instance, only that instance's block cache grows, and reading the same file again costs
  the object store nothing;
- 100 concurrent downloads through the balancer, spread over both instances, every byte
  checked against the source tree (sha256; on a mismatch the differing bytes are counted).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.api.server import open_session
from tests.dbfixtures import fresh_pg_database, pg_server_url  # noqa: F401
from tests.imagebuild.scale_image import FILES, name_of, scale_image
from tests.scale.cluster import API, REPOSITORY, STAGING, Cluster, start_cluster

MiB = 1 << 20
INSTANCE = "X-Filerestore-Instance"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("scale")
    with fresh_pg_database(pg_server_url, "fr_scale") as url:
        started = start_cluster(work, url, scale_image() / "disk.qcow2")
        try:
            yield started
        finally:
            started.stop()
            for log in sorted(work.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}")


def source(index: int) -> Path:
    return scale_image() / "tree" / name_of(index)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mount(cluster: Cluster, who: str, url: str | None = None) -> str:
    with cluster.client(who, url) as c:
        return str(open_session(c, cluster.backup_id)["mount_id"])


def corrupt_bytes(index: int, got: bytes) -> int:
    want = source(index).read_bytes()
    return sum(a != b for a, b in zip(want, got, strict=False)) + abs(len(want) - len(got))


def test_both_instances_started_from_one_settings_file(cluster: Cluster) -> None:
    """The settings file names a repository every instance adds if missing: it is there once."""
    for node in cluster.nodes:
        with cluster.client("admin", node.url) as c:
            r = c.get(f"{API}/repositories")
            assert r.status_code == 200, r.text
            names = sorted(repo["name"] for repo in r.json()["repositories"])
        assert names == sorted([REPOSITORY, STAGING])


def test_any_instance_serves_any_session(cluster: Cluster) -> None:
    first, second = cluster.nodes
    mount_id = mount(cluster, "u00", first.url)
    before = second.blocks()
    with cluster.client("u00", second.url) as c:
        r = c.get(f"{API}/restore/{mount_id}/files", params={"path": "/data/set1"})
        assert r.status_code == 200, r.text
        listed = sorted(e["name"] for e in r.json()["entries"])
    assert listed == sorted(p.name for p in source(1).parent.iterdir())
    digest, size, _ = cluster.download("u00", mount_id, 1, second.url)
    assert (digest, size) == (sha256(source(1)), source(1).stat().st_size)
    assert second.blocks()[0] > before[0]  # the second instance read the backup itself


def test_the_balancer_keeps_each_session_on_one_instance(cluster: Cluster) -> None:
    by_instance: dict[str, list[str]] = {}
    fetched_by: Counter[str] = Counter()
    users = iter(f"u{i:02d}" for i in range(1, 12))
    for index in range(2, 13):  # a file no session read before
        if len(by_instance) == len(cluster.nodes):
            break  # every instance has a session
        who = next(users)
        mount_id = mount(cluster, who)
        answered = set()
        for _ in range(4):
            with cluster.client(who) as c:
                r = c.get(f"{API}/restore/{mount_id}/files", params={"path": "/data"})
                assert r.status_code == 200, r.text
                answered.add(r.headers[INSTANCE])
        assert len(answered) == 1, answered  # every request of the session: one instance
        instance = answered.pop()
        by_instance.setdefault(instance, []).append(who)

        cluster.settle()
        blocks = {n.name: n.blocks()[0] for n in cluster.nodes}
        cluster.gets()
        digest, _, served = cluster.download(who, mount_id, index)
        assert (digest, served) == (sha256(source(index)), instance)
        cluster.settle()  # read-ahead started by the download lands in the cache too
        fetched = cluster.gets()
        grew = {n.name for n in cluster.nodes if n.blocks()[0] > blocks[n.name]}
        # only the session's instance read S3 (nothing at all if its read-ahead of an
        # earlier session had already brought these blocks)
        assert grew == ({instance} if fetched else set()), (fetched, grew)
        fetched_by[instance] += fetched
        digest, _, served = cluster.download(who, mount_id, index)
        assert (digest, served) == (sha256(source(index)), instance)
        cluster.settle()
        assert cluster.gets() == 0  # the second read came from that instance's cache
    assert len(by_instance) == len(cluster.nodes), by_instance
    assert sum(fetched_by.values()) > 0  # some session did read the store through the balancer


def instance_of(cluster: Cluster, who: str, mount_id: str) -> str:
    with cluster.client(who) as c:
        r = c.get(f"{API}/restore/{mount_id}/files", params={"path": "/"})
        assert r.status_code == 200, r.text
        return r.headers[INSTANCE]


def test_100_concurrent_downloads_through_the_balancer(cluster: Cluster) -> None:
    sessions: list[tuple[str, str]] = []
    placed: Counter[str] = Counter()
    users = iter(f"u{i:02d}" for i in range(12, 24))
    while len(placed) < len(cluster.nodes) or min(placed.values()) < 2:
        who = next(users)  # sessions until each instance has two (the hash places them)
        sessions.append((who, mount(cluster, who)))
        placed[instance_of(cluster, *sessions[-1])] += 1
    expected = {i: sha256(source(i)) for i in range(FILES)}

    def one(n: int) -> tuple[int, str, int, str | None]:
        who, mount_id = sessions[n % len(sessions)]
        index = n % FILES
        digest, size, served = cluster.download(who, mount_id, index)
        return index, digest, size, served

    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(one, range(100)))
    wrong = [(i, d) for i, d, _, _ in results if d != expected[i]]
    corrupt = 0
    for index, _ in wrong:  # count the damage for the report: fetch those again in full
        who, mount_id = sessions[0]
        with cluster.client(who) as c:
            got = c.get(
                f"{API}/restore/{mount_id}/download", params={"path": "/" + name_of(index)}
            ).content
        corrupt += corrupt_bytes(index, got)
    total = sum(size for _, _, size, _ in results)
    served = Counter(s for _, _, _, s in results)
    print(f"100 downloads, {total / MiB:.0f} MiB, by instance {dict(served)}, {corrupt} corrupt")
    assert wrong == [] and corrupt == 0
    assert total == sum(source(n % FILES).stat().st_size for n in range(100))
    assert set(served) == {n.name for n in cluster.nodes}  # both instances served

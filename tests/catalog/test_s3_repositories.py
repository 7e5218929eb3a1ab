# ruff: noqa: F811 - pytest fixtures imported from tests/s3server/fixtures.py are arguments
"""S3 repositories in the catalog, against moto's server (a process of its own) through the
latency proxy, on both databases: the same registrations as a local scan of the same files,
unreachable stores as unavailable (never empty), missing objects as missing, and no
credential in the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from filerestore.catalog import (
    Stores,
    add_repository,
    availability,
    get_backup,
    list_backups,
    locate_backup,
    repositories_with_availability,
    scan_repository,
)
from filerestore.catalog.stores import s3_options
from filerestore.db.models import Repository
from filerestore.errors import (
    BackupFileMissingError,
    InvalidRepositoryError,
    ObjectStoreUnavailableError,
    RepositoryUnavailableError,
)
from filerestore.settings import S3Credentials, Settings
from tests.imagebuild import formats as F
from tests.imagebuild.sparse import copytree_sparse
from tests.processes import free_port
from tests.s3server.fixtures import bucket, moto, proxy, s3, upload_tree  # noqa: F401
from tests.s3server.servers import ACCESS_KEY, REGION, SECRET_KEY, proxy_call

SECRET_ENV = "FR_TEST_S3_"


@pytest.fixture
def s3_settings(make_settings, tmp_path, monkeypatch) -> Settings:
    """Settings whose repository "nightly" reads its credentials from the environment."""
    monkeypatch.setenv(f"{SECRET_ENV}ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv(f"{SECRET_ENV}SECRET_ACCESS_KEY", SECRET_KEY)
    creds = S3Credentials(env_prefix=SECRET_ENV)
    settings: Settings = make_settings(
        s3_credentials={"nightly": creds, "down": creds},
        block_cache_dir=tmp_path / "blocks",
        s3_connect_timeout=1.0,
        s3_request_timeout=3.0,
        s3_retries=1,
    )
    return settings


@pytest.fixture
def stores(s3_settings):
    found = Stores(s3_settings)
    yield found
    found.close()


def _asking(stores: Stores) -> Stores:
    """Stores that ask the server on every open (s3_revalidate_after 0), as a host would
    once the window has passed."""
    return Stores(stores.settings.model_copy(update={"s3_revalidate_after": 0}))


def _tree(root: Path) -> None:
    """The formats scan test's repository, plus files a scan must skip or take by name."""
    root.mkdir()
    copytree_sparse(F.chain("vmdk").parent, root / "vm-vmdk")
    copytree_sparse(F.chain("qcow2-on-vhdx").parent, root / "vm-hyperv")
    copytree_sparse(F.VARIANTS["vmdk-twoGbMaxExtentSparse"]().parent, root / "vm-split")
    copytree_sparse(F.VARIANTS["vpc-fixed"]().parent, root / "vm-fixed")
    copytree_sparse(F.differencing("vhdx").parent, root / "vm-diff")
    (root / "vm-diff" / "expected.raw").unlink()
    (root / "README").write_text("not a backup")
    (root / "empty.raw").write_bytes(b"")  # a failed backup's leftover: never an image
    (root / "vm-raw").mkdir()
    (root / "vm-raw" / "disk.img").write_bytes(b"\1" * 65536)  # raw: taken by its name


def _registered(db, repository: str) -> dict[str, tuple[str, str | None, int]]:
    found = list_backups(db, repository)
    by_id = {b.id: b.path for b in found}
    return {b.path: (b.kind, by_id.get(b.parent_backup_id or 0), b.virtual_size) for b in found}


def test_a_scan_registers_what_a_local_scan_of_the_same_files_does(
    db, stores, s3, bucket, proxy, tmp_path
):
    root = tmp_path / "repo"
    _tree(root)
    upload_tree(s3, bucket, "nightly", root)
    url = f"s3://{bucket}/nightly"
    repo = add_repository(db, "nightly", url, endpoint=proxy.endpoint, stores=stores)
    assert (repo.kind, repo.root_path, repo.endpoint) == ("s3", url + "/", proxy.endpoint)
    add_repository(db, "disk", root)

    report = scan_repository(db, "nightly", stores=stores)
    assert report.errors == []
    local = scan_repository(db, "disk", stores=stores)
    assert sorted(report.added) == sorted(local.added)
    assert _registered(db, "nightly") == _registered(db, "disk")
    assert "vm-split/disk-s001.vmdk" not in _registered(db, "nightly")  # a part of vm-split
    assert "vm-raw/disk.img" in _registered(db, "nightly")
    assert {b.status for b in list_backups(db, "nightly", stores)} == {"available"}

    again = scan_repository(db, "nightly", stores=stores)
    assert (again.added, sorted(again.updated)) == ([], sorted(report.added))


def test_one_long_lived_store_per_repository(db, stores, s3, bucket, proxy, tmp_path):
    s3.put_object(Bucket=bucket, Key="a/disk.img", Body=b"\1" * 4096)
    repo = add_repository(db, "nightly", f"s3://{bucket}/a", endpoint=proxy.endpoint, stores=stores)
    scan_repository(db, "nightly", stores=stores)
    list_backups(db, stores=stores)
    with stores.opened(repo) as first, stores.opened(repo) as second:
        assert first is second
    assert len(stores.held()) == 1


def test_an_unreachable_store_is_unavailable_never_empty(db, stores, s3, bucket, proxy):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(RepositoryUnavailableError) as refused:
        add_repository(db, "down", f"s3://{bucket}/x", endpoint=dead, stores=stores)
    assert (refused.value.http_status, refused.value.exit_code) == (503, 6)

    s3.put_object(Bucket=bucket, Key="x/disk.img", Body=b"\1" * 4096)
    repo = add_repository(db, "down", f"s3://{bucket}/x", endpoint=proxy.endpoint, stores=stores)
    scan_repository(db, "down", stores=stores)
    (backup,) = list_backups(db, "down", stores)
    assert backup.status == "available"

    # A stalled request ends at the request timeout; the fixture's 3 s (with one retry) would
    # spend half a minute on the seven stalled requests below, so this host waits 0.5 s.
    impatient = Stores(stores.settings.model_copy(update={"s3_request_timeout": 0.5}))
    asking = _asking(impatient)
    proxy_call(proxy, "set", stall=1)  # accepts connections, never answers
    try:
        found = {r.name: a for r, a in repositories_with_availability(db, impatient)}
        assert not found["down"].available and found["down"].reason
        assert [b.status for b in list_backups(db, "down", impatient)] == ["unavailable"]
        with pytest.raises(RepositoryUnavailableError):
            scan_repository(db, "down", stores=impatient)
        with pytest.raises(ObjectStoreUnavailableError):
            locate_backup(db, backup.id, asking)
    finally:
        proxy_call(proxy, "set", stall=0)
        asking.close()
    try:  # the same long-lived store answers again once the server does
        assert availability(repo, impatient).available
    finally:
        impatient.close()


def test_a_missing_bucket_is_unavailable(db, stores, proxy):
    with pytest.raises(RepositoryUnavailableError, match="does not exist"):
        add_repository(
            db, "nightly", "s3://no-such-bucket/x", endpoint=proxy.endpoint, stores=stores
        )


def test_a_deleted_object_is_missing(db, stores, s3, bucket, proxy):
    s3.put_object(Bucket=bucket, Key="vm/disk.img", Body=b"\1" * 4096)
    add_repository(db, "nightly", f"s3://{bucket}/vm", endpoint=proxy.endpoint, stores=stores)
    scan_repository(db, "nightly", stores=stores)
    (backup,) = list_backups(db, "nightly", stores)
    s3.delete_object(Bucket=bucket, Key="vm/disk.img")
    assert [b.status for b in list_backups(db, "nightly", stores)] == ["missing"]
    fresh = _asking(stores)
    try:
        assert get_backup(db, backup.id, fresh).status == "missing"
        with pytest.raises(BackupFileMissingError):
            locate_backup(db, backup.id, fresh)
    finally:
        fresh.close()


def test_the_revalidate_window_asks_nothing_and_zero_asks_each_time(db, stores, s3, bucket, proxy):
    s3.put_object(Bucket=bucket, Key="vm/disk.img", Body=b"\1" * 4096)
    add_repository(db, "nightly", f"s3://{bucket}/vm", endpoint=proxy.endpoint, stores=stores)
    scan_repository(db, "nightly", stores=stores)  # its open confirmed the object
    (backup,) = list_backups(db, "nightly", stores)
    proxy_call(proxy, "reset")
    assert get_backup(db, backup.id, stores).status == "available"
    assert proxy_call(proxy, "reset") == {}  # within s3_revalidate_after: nothing asked
    always = _asking(stores)
    try:
        assert get_backup(db, backup.id, always).status == "available"
    finally:
        always.close()
    assert proxy_call(proxy, "reset") == {"HEAD": 1}


def test_credentials_never_reach_the_database(db, stores, s3_settings, bucket, proxy):
    add_repository(db, "nightly", f"s3://{bucket}/p", endpoint=proxy.endpoint, stores=stores)
    with db.read() as session:
        row = session.scalars(select(Repository)).one()
        values = [str(getattr(row, c.key)) for c in Repository.__table__.columns]
    assert not [v for v in values if ACCESS_KEY in v or SECRET_KEY in v]
    (info,) = [r for r, _ in repositories_with_availability(db, stores)]
    options, prefix = s3_options(info, s3_settings)
    assert (options.access_key_id, options.secret_access_key, prefix) == (
        ACCESS_KEY,
        SECRET_KEY,
        "p/",
    )
    assert SECRET_KEY not in repr(options) and SECRET_KEY not in repr(s3_settings)


@pytest.mark.parametrize(
    ("url", "endpoint", "why"),
    [
        ("s3://Bad_Bucket/x", None, "not a valid S3 bucket name"),
        ("s3://bucket/../x", None, "invalid repository prefix"),
        ("s3://bucket/x", "ftp://host", "not an http"),
    ],
)
def test_bad_definitions_are_refused(db, stores, url, endpoint, why):
    with pytest.raises(InvalidRepositoryError, match=why):
        add_repository(db, "nightly", url, endpoint=endpoint, stores=stores)


def test_region_travels_to_the_client(db, stores, bucket, proxy, s3_settings):
    repo = add_repository(
        db, "nightly", f"s3://{bucket}", endpoint=proxy.endpoint, region=REGION, stores=stores
    )
    assert s3_options(repo, s3_settings)[0].region == REGION
    assert repo.root_path == f"s3://{bucket}/"

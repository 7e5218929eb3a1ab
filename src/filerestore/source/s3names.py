"""Which key of a bucket a repository name means: the confinement rules of a store, for keys.

# References: Amazon S3 User Guide, "Naming Amazon S3 objects" (a key is at most 1,024
# bytes of UTF-8); QEMU block.c path_has_protocol() for what a protocol name looks like.

A repository in S3 is a bucket and a prefix; its files are the keys under the prefix, and a
name in the repository is the key with the prefix taken off. The rules are the ones a
directory on disk has (:mod:`filerestore.source.local`), with ``/`` as the separator:

- a relative name is relative to the "directory" of the key naming it (a backing name to
  its image's), else to the prefix; ``.`` and empty components are dropped, ``..`` goes up
  one and is refused above the prefix, so a name never climbs out of the repository;
- an absolute name (``/prefix/vm/base.qcow2``) is a key of the same bucket and must lie
  under the prefix: the bucket root plays the part the host's ``/`` plays on disk;
- a protocol name (``s3://other-bucket/...``, ``http:``, ``json:``: a ``scheme:`` before
  the first ``/``) is refused, so no name reaches another bucket or another service; so is
  a NUL byte.

These are pure functions over strings: nothing here talks to a server.
"""

from __future__ import annotations

import re

from filerestore.errors import ImageNotFoundError, InvalidRepositoryError, RepositoryEscapeError

MAX_KEY_BYTES = 1024  # S3's limit on a key's UTF-8 length
# "Bucket naming rules" (S3 User Guide): 3-63 of a-z 0-9 . -, starting and ending with a
# letter or digit
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, normalized prefix) of a repository URL ``s3://BUCKET[/PREFIX]``, as
    ``repo add NAME s3://...`` takes it."""
    if not url.startswith("s3://"):
        raise InvalidRepositoryError(f"{url!r} is not an s3://BUCKET/PREFIX URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidRepositoryError(f"{bucket!r} is not a valid S3 bucket name")
    try:
        return bucket, normalize_prefix(prefix)
    except RepositoryEscapeError as exc:
        raise InvalidRepositoryError(str(exc)) from exc


def normalize_prefix(prefix: str) -> str:
    """``prefix`` as a list of components joined by ``/`` with a trailing ``/`` (or "")."""
    parts = [p for p in prefix.split("/") if p not in ("", ".")]
    if ".." in parts or any("\0" in p for p in parts):
        raise RepositoryEscapeError(f"invalid repository prefix {prefix!r}")
    return "".join(f"{p}/" for p in parts)


def resolve_name(prefix: str, name: str, relative_to: str | None = None) -> str:
    """The repository name (the key without ``prefix``) that ``name`` means.

    ``prefix`` is normalized (see :func:`normalize_prefix`); ``relative_to`` is a name this
    function returned before (the image whose backing name ``name`` is).
    """
    if "\0" in name:
        raise RepositoryEscapeError(f"file name {name!r} contains a NUL byte")
    head = name.split("/", 1)[0]
    if ":" in head:
        scheme = head.split(":", 1)[0]
        raise RepositoryEscapeError(
            f"{name!r} is a protocol name ({scheme}:), only names inside the repository are allowed"
        )
    if not name or name.endswith("/"):
        raise ImageNotFoundError(f"{name!r} does not name a file")
    if name.startswith("/"):
        key = "/".join(p for p in name.split("/") if p not in ("", "."))
        if ".." in key.split("/") or not (key + "/").startswith(prefix) or key + "/" == prefix:
            raise RepositoryEscapeError(f"{name!r} is outside the repository")
        parts = key[len(prefix) :].split("/")
    else:
        base = [] if relative_to is None else relative_to.split("/")[:-1]
        parts = [*base, *name.split("/")]
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                raise RepositoryEscapeError(
                    f"{name!r} is outside the repository (it climbs above the prefix)"
                )
            out.pop()
            continue
        out.append(part)
    if not out:
        raise ImageNotFoundError(f"{name!r} does not name a file")
    resolved = "/".join(out)
    if len((prefix + resolved).encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
        raise ImageNotFoundError(f"{name!r} is longer than an S3 key may be")
    return resolved

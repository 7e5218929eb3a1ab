"""Decompression of one QCOW2 compressed cluster, zlib or zstd, with bounded output.

# References: QEMU docs/interop/qcow2.txt ("compression_type"); QEMU block/qcow2-threads.c
# (qcow2_zlib_decompress: raw deflate, window bits -12; qcow2_zstd_decompress: streamed,
# frames may lack a content size). Both must yield exactly one full cluster.
"""

from __future__ import annotations

import io
import threading
import zlib
from typing import TYPE_CHECKING

from filerestore.errors import CorruptImageError

if TYPE_CHECKING:  # imported with the first zstd cluster: most images have none (CLI start-up)
    import zstandard

_ZLIB_WBITS = -12  # raw deflate with a 4 KiB window, as QEMU writes it
_local = threading.local()


def _zstd() -> zstandard.ZstdDecompressor:
    # a decompression context must not be shared between threads
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "zstd", None)
    if dctx is None:
        import zstandard

        dctx = zstandard.ZstdDecompressor()
        _local.zstd = dctx
    return dctx


def _zstd_error() -> type[Exception]:
    import zstandard

    return zstandard.ZstdError


def decompress_cluster(compression: str, data: bytes, cluster_size: int) -> bytes:
    """Decompress ``data`` (which may carry trailing bytes of the next cluster) to one cluster."""
    try:
        if compression == "zlib":
            out = zlib.decompressobj(_ZLIB_WBITS).decompress(data, cluster_size)
        else:
            out = _zstd_cluster(data, cluster_size)
    except (zlib.error, _zstd_error()) as exc:
        raise CorruptImageError(
            f"compressed cluster does not decompress ({compression}): {exc}"
        ) from exc
    if len(out) != cluster_size:
        raise CorruptImageError(
            f"compressed cluster decompresses to {len(out)} bytes, not {cluster_size} "
            f"({compression})"
        )
    return out


def _zstd_cluster(data: bytes, cluster_size: int) -> bytes:
    # stream_reader bounds the output: a frame claiming gigabytes yields one cluster at most
    reader = _zstd().stream_reader(io.BytesIO(data), read_across_frames=False)
    parts = []
    got = 0
    while got < cluster_size:
        chunk = reader.read(cluster_size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)

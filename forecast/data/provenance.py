"""Where a store came from: source files with checksums, and a content hash that names the dataset."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_BLOCK = 8 << 20


def file_checksum(path: Path) -> str:
    """sha256 of a file, or of a Zarr store's metadata documents and sizes (hashing every chunk costs a full read)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(item.relative_to(path)).encode())
            if item.name in {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}:
                digest.update(item.read_bytes())
            else:
                digest.update(item.stat().st_size.to_bytes(8, "little"))
        return digest.hexdigest()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def describe_sources(paths: list[Path]) -> list[dict[str, Any]]:
    """``[{path, bytes, sha256}]`` for each source; hashed in threads (hashlib releases the GIL)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        checksums = list(pool.map(file_checksum, paths))
    return [{"path": str(p.resolve()), "bytes": _size(p), "sha256": c} for p, c in zip(paths, checksums, strict=True)]


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def content_hash(sources: list[dict[str, Any]], settings: dict[str, Any], version: object) -> str:
    """A short id of the data alone: the sources' bytes, the settings that shape the data (variables, region,
    splits, …) and the store format. A store built twice from the same files gets the same hash; a learning
    rate, a tracking server or the sources' paths change nothing."""
    payload = json.dumps(
        {"sources": [s["sha256"] for s in sources], "data": settings, "format": version}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]

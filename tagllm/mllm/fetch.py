"""Fetches a checkpoint archive (tar, optionally gzip-compressed) over HTTP(S) into a directory:
what the model server's init container does with object storage (a bucket's HTTPS URL, presigned
when the bucket is private), so that the weights land on the node's own disk.

The archive is streamed to disk, its SHA-256 checked when one is given, then unpacked with
tarfile's "data" filter (no absolute paths, no `..`, no links out of the directory, no device
files). A marker file records the digest: a restarted pod whose volume still holds the same
checkpoint fetches nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

MARKER = ".tagllm-fetched"
_CHUNK = 1024 * 1024


class FetchError(RuntimeError):
    pass


def fetch_checkpoint(url: str, dest: Path, sha256: str = "", timeout: float = 60.0) -> bool:
    """Unpacks the archive at `url` into `dest`; False when `dest` already holds it (same digest)."""
    if not url.startswith(("https://", "http://", "file://")):
        raise FetchError(f"checkpoint URL must be http(s) or file, got {url.split(':', 1)[0]!r}")
    sha256 = sha256.strip().lower()
    marker = dest / MARKER
    if sha256 and marker.exists() and marker.read_text().strip() == sha256:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    # Scratch space inside `dest` itself: a mounted volume's parent may be read-only.
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as scratch:
        archive = Path(scratch) / "checkpoint.tar"
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, archive.open("wb") as out:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"cannot fetch the checkpoint: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise FetchError(f"cannot fetch the checkpoint: {reason}") from None
        if sha256 and digest.hexdigest() != sha256:
            raise FetchError(f"checkpoint archive has SHA-256 {digest.hexdigest()}, expected {sha256}")
        unpacked = Path(scratch) / "unpacked"
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise FetchError(f"checkpoint archive cannot be unpacked: {exc}") from None
        if not (unpacked / "config.json").is_file():
            raise FetchError("checkpoint archive holds no config.json at its top")
        for child in dest.iterdir():  # an earlier, different checkpoint goes
            if child == Path(scratch):
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        for child in unpacked.iterdir():
            child.rename(dest / child.name)
    marker.write_text(digest.hexdigest() + "\n")
    return True

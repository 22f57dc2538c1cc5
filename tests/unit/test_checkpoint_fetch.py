"""The init container's fetch: a checkpoint archive over real HTTP (loopback) into a directory."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import threading

import pytest

from tagllm.mllm.fetch import MARKER, FetchError, fetch_checkpoint


def _archive(members: dict[str, bytes], gzip: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzip else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def served(tmp_path):
    """Files put in the returned folder are served at the returned base URL."""
    root = tmp_path / "bucket"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


CHECKPOINT = {"config.json": b"{}", "model.safetensors": b"weights", "tokenizer/vocab.json": b"[]"}


def test_a_checkpoint_is_unpacked_checked_and_not_fetched_twice(served, tmp_path):
    root, base = served
    data = _archive(CHECKPOINT)
    (root / "ckpt.tar.gz").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "checkpoint"
    assert fetch_checkpoint(f"{base}/ckpt.tar.gz", dest, digest)
    assert {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()} == {*CHECKPOINT, MARKER}
    assert (dest / "tokenizer" / "vocab.json").read_bytes() == b"[]"
    assert not fetch_checkpoint(f"{base}/ckpt.tar.gz", dest, digest)  # a restarted pod: already there


def test_another_checkpoint_replaces_the_one_there(served, tmp_path):
    root, base = served
    (root / "a.tar").write_bytes(_archive(CHECKPOINT, gzip=False))
    (root / "b.tar").write_bytes(_archive({"config.json": b'{"b": 1}'}, gzip=False))
    dest = tmp_path / "checkpoint"
    fetch_checkpoint(f"{base}/a.tar", dest)
    fetch_checkpoint(f"{base}/b.tar", dest)
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "config.json"]


@pytest.mark.parametrize(
    "members, digest, message",
    [
        (CHECKPOINT, "0" * 64, "SHA-256"),
        ({"../escape.txt": b"x", "config.json": b"{}"}, "", "cannot be unpacked"),
        ({"weights.bin": b"x"}, "", "no config.json"),
    ],
)
def test_a_wrong_or_hostile_archive_is_refused_and_nothing_lands(served, tmp_path, members, digest, message):
    root, base = served
    (root / "ckpt.tar.gz").write_bytes(_archive(members))
    dest = tmp_path / "data" / "checkpoint"
    with pytest.raises(FetchError, match=message):
        fetch_checkpoint(f"{base}/ckpt.tar.gz", dest, digest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "data" / "escape.txt").exists()


def test_the_cli_says_what_failed_in_one_line(served, tmp_path):
    _, base = served
    run = subprocess.run(
        [sys.executable, "-m", "tagllm.cli.main", "model", "fetch", "--dest", str(tmp_path / "c"),
         "--url", f"{base}/missing.tar.gz"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert "cannot fetch the checkpoint" in line and "404" in line, line


def test_the_cli_reads_the_url_and_digest_from_files_as_a_mounted_secret_gives_them(served, tmp_path):
    root, base = served
    data = _archive(CHECKPOINT)
    (root / "ckpt.tar.gz").write_bytes(data)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "url").write_text(f"{base}/ckpt.tar.gz\n")
    (secret / "sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    command = [sys.executable, "-m", "tagllm.cli.main", "model", "fetch", "--dest", str(tmp_path / "c"),
               "--url-file", str(secret / "url"), "--sha256-file", str(secret / "sha256")]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, timeout=60)
    again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert (first.returncode, first.stdout.strip()) == (0, "fetched"), first.stderr
    assert (again.returncode, again.stdout.strip()) == (0, "already there"), again.stderr
    assert (tmp_path / "c" / "model.safetensors").read_bytes() == b"weights"

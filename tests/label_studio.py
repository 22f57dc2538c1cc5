"""A real Label Studio on loopback for the review tests: its own data directory (SQLite), a
preset user with a legacy API token, no telemetry and no update check; stopped afterwards."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tagllm.stack.ports import free_port
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
EXECUTABLE = ROOT / ".tools" / "label-studio" / "bin" / "label-studio"
# Its first start migrates a fresh database: about a minute of CPU, which on a shared machine
# running everything else at a higher priority took 15 minutes of wall time.
START_SECONDS = 1800


@dataclasses.dataclass(frozen=True)
class LabelStudio:
    url: str
    token: str
    user: str
    log: Path


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=3) as response:
            return b"UP" in response.read()
    except OSError:
        return False


@contextlib.contextmanager
def label_studio(data_dir: Path) -> Iterator[LabelStudio]:
    assert EXECUTABLE.exists(), f"{EXECUTABLE} is missing: scripts/setup installs Label Studio there"
    port = free_port()
    token = secrets.token_hex(20)
    user = "reviewer@example.com"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "label-studio.log"
    environment = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
    }
    command = [
        str(EXECUTABLE), "start", "--no-browser", "--data-dir", str(data_dir),
        "--internal-host", "127.0.0.1", "--port", str(port),
        "--username", user, "--password", secrets.token_hex(12),
        "--user-token", token, "--enable-legacy-api-token",
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment, cwd=data_dir
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert process.poll() is None, (
                f"Label Studio exited ({process.returncode}): {log.read_text()[-2000:]}"
            )
            return _healthy(url)

        wait_until(up, START_SECONDS, f"Label Studio answering on {url} (its log: {log})", 1)
        yield LabelStudio(url, token, user, log)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

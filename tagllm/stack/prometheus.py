"""Prometheus for the local stack: its configuration, and the server process."""

from __future__ import annotations

import dataclasses
import shutil
import urllib.request
from pathlib import Path

import yaml

from tagllm import ports
from tagllm.resources import PROMETHEUS_RULES, ResourceMissing, resource
from tagllm.stack.processes import ManagedProcess


@dataclasses.dataclass(frozen=True)
class ScrapeTargets:
    metrics_service: str = ports.loopback(ports.METRICS_HTTP)
    gateway: str = ports.loopback(ports.GATEWAY_METRICS)
    refiner: str = ports.loopback(ports.REFINER_METRICS)
    triton: str = ports.loopback(ports.TRITON_METRICS)


def local_config(targets: ScrapeTargets, rule_files: list[str], scrape_interval: str = "5s") -> dict:
    """The scrape configuration of the local stack (deploy/prometheus/prometheus.yml)."""
    jobs = [
        ("tagllm-metrics", targets.metrics_service),
        ("tagllm-gateway", targets.gateway),
        ("tagllm-refiner", targets.refiner),
        ("triton", targets.triton),
    ]
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": rule_files,
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in jobs
        ],
    }


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("the prometheus binary is not installed (Debian: apt-get install prometheus)")
    return binary


def prometheus_process(
    targets: ScrapeTargets, run_dir: Path, host: str, port: int, scrape_interval: str = "5s"
) -> ManagedProcess:
    folder = run_dir / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    rules = sorted(str(p) for p in resource(PROMETHEUS_RULES).glob("*.yml"))
    if not rules:
        raise ResourceMissing(f"no Prometheus rule files (*.yml) in {resource(PROMETHEUS_RULES)}")
    config = local_config(targets, rules, scrape_interval)
    return prometheus_with_config(config, folder, host, port, run_dir / "logs" / "prometheus.log")


def prometheus_with_config(config: dict, folder: Path, host: str, port: int, log: Path) -> ManagedProcess:
    """A Prometheus server of `config`, its configuration and data in `folder`, its log at `log`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [
        prometheus_binary(),
        f"--config.file={path}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address={host}:{port}",
    ]
    return ManagedProcess("prometheus", argv, log)


def prometheus_ready(host: str, port: int) -> bool:
    with urllib.request.urlopen(f"http://{host}:{port}/-/ready", timeout=2) as response:
        return response.status == 200

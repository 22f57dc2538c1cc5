"""`tagllm bench --part load`: a bounded load test of the services, with the null model.

The model answers instantly, so what is measured is the gateway's and the refiner's own
behaviour: latency and throughput under a steady load, shedding beyond the in-flight limit, the
answers beside many idle streams, and the gateway's memory through all of it, through thin
image strips that once made it allocate gigabytes, through a BatchTag of flat high-pixel PNGs
(a few hundred KB on the wire, each decoded to 150 MB) and through a StreamTag whose client
sends heavy images and never reads its answers.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
import threading
import time
from collections import Counter
from concurrent import futures
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class LoadSettings:
    steady_clients: int = 8
    steady_requests: int = 2000
    overload_clients: int = 48
    overload_requests: int = 2000
    max_in_flight: int = 16
    idle_streams: int = 64
    probes: int = 20
    strips: int = 10
    # Flat images of this many pixels (under the gateway's default limit of 40 million), per batch.
    heavy_pixels: int = 39_000_000
    heavy_batch: int = 16
    heavy_batches: int = 3
    # Images of about 600 KB sent on a stream whose answers are not read.
    unread_images: int = 200
    unread_seconds: float = 5.0


def _memory_mib(pid: int) -> dict[str, float]:
    """Resident memory now and its peak since the process started (MiB)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss_mib": fields["VmRSS"], "peak_mib": fields["VmHWM"]}


def _images(count: int) -> list[bytes]:
    from PIL import Image

    images = []
    for i in range(count):
        out = io.BytesIO()
        Image.new("RGB", (64 + i % 32, 48 + i // 32), (i * 7 % 256, 80, 160)).save(out, format="PNG")
        images.append(out.getvalue())
    return images


def percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": 1000 * ordered[-1]}


def _drive(client, images: list[bytes], clients: int, requests: int, options) -> dict[str, Any]:
    import grpc

    codes: Counter[str] = Counter()
    ok_seconds: list[float] = []
    shed_seconds: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        start = time.perf_counter()
        try:
            client.tag(images[i % len(images)], options=options, timeout=60)
            code = "OK"
        except grpc.RpcError as exc:
            code = exc.code().name
        elapsed = time.perf_counter() - start
        with lock:
            codes[code] += 1
            (ok_seconds if code == "OK" else shed_seconds).append(elapsed)

    start = time.perf_counter()
    with futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    wall = time.perf_counter() - start
    return {
        "clients": clients,
        "requests": requests,
        "codes": dict(codes),
        "images_per_second": codes["OK"] / wall,
        "ok": percentiles(ok_seconds),
        "refused": percentiles(shed_seconds),
    }


def load_benchmark(settings: LoadSettings = LoadSettings(), log=print) -> dict[str, Any]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from PIL import Image

    from tagllm.client import TaggingClient, strategy_options
    from tagllm.stack.local import LocalStack, StackSettings
    from tagllm.stack.ports import free_ports
    from tagllm.v1 import tagging_pb2_grpc

    options = strategy_options("multi_option")
    images = _images(256)
    result: dict[str, Any] = {"settings": dataclasses.asdict(settings)}
    ports: dict[str, Any] = free_ports()
    with tempfile.TemporaryDirectory() as folder:
        stack_settings = StackSettings(
            model_dir=Path(folder),
            run_dir=Path(folder),
            model_backend="null",
            service_settings={"gateway": {"cache_entries": 0, "max_in_flight": settings.max_in_flight}},
            **ports,
        )
        log("starting the stack with the null model ...")
        with LocalStack(stack_settings) as stack, TaggingClient(stack.settings.gateway_address) as client:
            gateway = stack.processes["gateway"].process
            assert gateway is not None
            memory = {"start": _memory_mib(gateway.pid)}
            log(f"steady: {settings.steady_requests} requests from {settings.steady_clients} clients ...")
            result["steady"] = _drive(
                client, images, settings.steady_clients, settings.steady_requests, options
            )
            memory["after steady"] = _memory_mib(gateway.pid)
            log(f"overload: {settings.overload_requests} requests, {settings.overload_clients} clients ...")
            result["overload"] = _drive(
                client, images, settings.overload_clients, settings.overload_requests, options
            )
            memory["after overload"] = _memory_mib(gateway.pid)

            log(f"{settings.idle_streams} idle streams, then health and Tag beside them ...")
            channel = grpc.insecure_channel(stack.settings.gateway_address)
            stub = tagging_pb2_grpc.TaggingServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            never = threading.Event()

            def silent():
                never.wait()
                return
                yield

            streams = [stub.StreamTag(silent(), timeout=300) for _ in range(settings.idle_streams)]
            probes = []
            for i in range(settings.probes):
                start = time.perf_counter()
                health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                client.tag(images[i], options=options, timeout=10)
                probes.append(time.perf_counter() - start)
            never.set()
            for stream in streams:
                stream.cancel()
            channel.close()
            result["beside_idle_streams"] = {"streams": settings.idle_streams, **percentiles(probes)}

            log("thin strips (1x400000 and 1x1003520 PNG) ...")
            before = _memory_mib(gateway.pid)
            for size in ((1, 400_000), (1, 1_003_520)):
                out = io.BytesIO()
                Image.new("1", size).save(out, format="PNG")
                for _ in range(settings.strips):
                    try:
                        client.tag(out.getvalue(), options=options, timeout=10)
                    except grpc.RpcError as exc:
                        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
            after = _memory_mib(gateway.pid)
            result["strips"] = {"peak_growth_mib": after["peak_mib"] - before["peak_mib"], **after}
            memory["after strips"] = after

            log(f"{settings.heavy_batches} BatchTag calls of {settings.heavy_batch} flat images ...")
            result["heavy_batch"] = _heavy_batches(
                stack.settings.gateway_address, gateway.pid, settings, options
            )
            memory["after heavy batches"] = _memory_mib(gateway.pid)
            log(f"a stream of {settings.unread_images} images whose answers are not read ...")
            result["unread_stream"] = _unread_stream(
                stack.settings.gateway_address, gateway.pid, settings, options
            )
            memory["end"] = _memory_mib(gateway.pid)
            result["gateway_memory"] = memory
    return result


def _heavy_batches(address: str, pid: int, settings: LoadSettings, options) -> dict[str, Any]:
    import grpc
    from google.rpc import code_pb2
    from PIL import Image

    from tagllm.v1 import tagging_pb2, tagging_pb2_grpc

    side = int(settings.heavy_pixels**0.5)
    out = io.BytesIO()
    Image.new("RGB", (side, settings.heavy_pixels // side), (90, 120, 150)).save(out, format="PNG")
    image = out.getvalue()
    batch = tagging_pb2.BatchTagRequest(
        requests=[
            tagging_pb2.TagRequest(image=tagging_pb2.Image(content=image, id=str(i)), options=options)
            for i in range(settings.heavy_batch)
        ]
    )
    before = _memory_mib(pid)
    codes: Counter[str] = Counter()
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = tagging_pb2_grpc.TaggingServiceStub(channel)
        for _ in range(settings.heavy_batches):
            for item in stub.BatchTag(batch, timeout=300).results:
                codes[code_pb2.Code.Name(item.status.code)] += 1
    after = _memory_mib(pid)
    return {
        "image_bytes": len(image),
        "pixels": side * (settings.heavy_pixels // side),
        "codes": dict(codes),
        "peak_growth_mib": after["peak_mib"] - before["peak_mib"],
        **after,
    }


# A client that reads nothing takes answers into its HTTP/2 receive window until it is full; a
# small fixed window (no growth by bandwidth probing) makes that a few answers, as a client
# whose buffers are full would have.
UNREAD_CLIENT_OPTIONS = [("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0)]


def _unread_stream(address: str, pid: int, settings: LoadSettings, options) -> dict[str, Any]:
    import os

    import grpc
    from PIL import Image, PngImagePlugin

    from tagllm.v1 import tagging_pb2, tagging_pb2_grpc

    def heavy(i: int) -> bytes:  # a small picture carrying 600 KB of text: cheap to tag, heavy to hold
        info = PngImagePlugin.PngInfo()
        info.add_text("padding", os.urandom(300_000).hex())
        out = io.BytesIO()
        Image.new("RGB", (64, 48 + i % 16), (i % 256, 40, 40)).save(out, format="PNG", pnginfo=info)
        return out.getvalue()

    pulled = []

    def images():
        for i in range(settings.unread_images):
            pulled.append(i)
            yield tagging_pb2.TagRequest(image=tagging_pb2.Image(content=heavy(i)), options=options)

    before = _memory_mib(pid)
    with grpc.insecure_channel(address, options=UNREAD_CLIENT_OPTIONS) as channel:
        answers = tagging_pb2_grpc.TaggingServiceStub(channel).StreamTag(images(), timeout=300)
        time.sleep(settings.unread_seconds)  # the client reads nothing
        held = len(pulled)
        during = _memory_mib(pid)
        answers.cancel()
    return {
        "images_sent": settings.unread_images,
        "images_taken_while_unread": held,
        "peak_growth_mib": during["peak_mib"] - before["peak_mib"],
        **during,
    }


def format_load(result: dict[str, Any]) -> str:
    lines = [
        "| load (null model) | clients | requests | OK | refused | images/s | OK p50 / p99 ms | "
        "refused p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("steady", "overload"):
        row = result[name]
        ok = row["codes"].get("OK", 0)
        refused = row["requests"] - ok
        lines.append(
            f"| {name} | {row['clients']} | {row['requests']} | {ok} | {refused} "
            f"({', '.join(f'{k} {v}' for k, v in row['codes'].items() if k != 'OK') or '-'}) | "
            f"{row['images_per_second']:.0f} | "
            f"{row['ok'].get('p50_ms', 0):.1f} / {row['ok'].get('p99_ms', 0):.1f} | "
            + (
                f"{row['refused']['p50_ms']:.1f} / {row['refused']['p99_ms']:.1f} |"
                if row["refused"]
                else "- |"
            )
        )
    idle = result["beside_idle_streams"]
    strips, heavy, unread = result["strips"], result["heavy_batch"], result["unread_stream"]
    lines += [
        "",
        f"health check + Tag beside {idle['streams']} idle StreamTag calls: p50 {idle['p50_ms']:.1f} ms, "
        f"max {idle['max_ms']:.1f} ms",
        f"gateway peak memory growth over 2 x {result['settings']['strips']} thin strips: "
        f"{strips['peak_growth_mib']:.1f} MiB",
        f"gateway peak memory growth over {result['settings']['heavy_batches']} BatchTag calls of "
        f"{result['settings']['heavy_batch']} flat {heavy['pixels'] / 1e6:.0f}-megapixel PNGs "
        f"({heavy['image_bytes'] // 1024} KB each; {heavy['codes']}): {heavy['peak_growth_mib']:.1f} MiB",
        f"a StreamTag sending {unread['images_sent']} images of 600 KB whose answers are not read: "
        f"{unread['images_taken_while_unread']} taken in {result['settings']['unread_seconds']:g} s, "
        f"gateway peak memory growth {unread['peak_growth_mib']:.1f} MiB",
        "",
        "| gateway memory | RSS MiB | peak MiB |",
        "|---|---|---|",
    ]
    for when, figures in result["gateway_memory"].items():
        lines.append(f"| {when} | {figures['rss_mib']:.0f} | {figures['peak_mib']:.0f} |")
    return "\n".join(lines) + "\n"

"""Metrics service: takes one record per tagged image and exports them on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.common.grpc_server import GrpcServer, run_service
from services.common.logs import get_logger
from tagllm.convert import record_from_proto
from tagllm.internal.v1 import metrics_pb2, metrics_pb2_grpc
from tagllm.metrics import TaggingMetrics
from tagllm.settings import MetricsSettings
from tagllm.vocab import builtin_names, builtin_vocabulary

SERVICE = metrics_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name
log = get_logger("metrics")


class MetricsServicer(metrics_pb2_grpc.MetricsServiceServicer):
    def __init__(self, metrics: TaggingMetrics) -> None:
        self.metrics = metrics

    async def Record(self, request: metrics_pb2.RecordRequest, context) -> metrics_pb2.RecordResponse:
        accepted = 0
        for message in request.records:
            try:
                self.metrics.observe(record_from_proto(message))
            except ValueError as exc:
                self.metrics.records_invalid.inc()
                log.warning("invalid record", error=str(exc)[:300], request_id=message.request_id[:128])
                continue
            accepted += 1
        return metrics_pb2.RecordResponse(accepted=accepted)


def build_server(settings: MetricsSettings) -> GrpcServer:
    registry = CollectorRegistry()
    metrics = TaggingMetrics(
        registry,
        gpu_price_per_hour=settings.gpu_price_per_hour,
        human_cost_per_image=settings.human_cost_per_image,
        max_class_labels=settings.max_class_labels,
        max_vocabularies=settings.max_vocabularies,
    )
    for name in builtin_names():
        metrics.prepare(name, builtin_vocabulary(name).names)
    servicer = MetricsServicer(metrics)
    return GrpcServer(
        settings,
        [SERVICE],
        lambda server: metrics_pb2_grpc.add_MetricsServiceServicer_to_server(servicer, server),
        registry=registry,
    )


def main(argv: list[str] | None = None) -> None:
    run_service("metrics service", MetricsSettings, build_server, argv)


if __name__ == "__main__":
    main()

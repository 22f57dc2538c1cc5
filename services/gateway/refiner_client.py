"""The core's `Refiner` port over gRPC: a job to a RefineRequest, the refiner's failure to a
GatewayError that keeps its status (where a client can act on it) and its RetryInfo."""

from __future__ import annotations

import grpc

from services.common.interceptors import REQUEST_ID_KEY
from services.gateway.contract import Code, GatewayError, Refined, RefineJob
from tagllm.client import retry_delay
from tagllm.convert import options_to_proto
from tagllm.internal.v1 import refinement_pb2, refinement_pb2_grpc

# The refiner's statuses a client is told as they are; any other reads as UNAVAILABLE.
_PASS_THROUGH = {
    grpc.StatusCode.INVALID_ARGUMENT: Code.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND: Code.NOT_FOUND,
    grpc.StatusCode.DEADLINE_EXCEEDED: Code.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE: Code.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Code.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED: Code.CANCELLED,
}


class GrpcRefiner:
    def __init__(self, stub: refinement_pb2_grpc.RefinementServiceStub) -> None:
        self.stub = stub

    async def refine(self, job: RefineJob, timeout: float) -> Refined:
        request = refinement_pb2.RefineRequest(
            image=job.image,
            vocabulary=job.vocabulary,
            vocabulary_yaml=job.vocabulary_yaml,
            options=options_to_proto(job.options),
            request_id=job.request_id,
        )
        if job.reference is not None:
            request.reference.SetInParent()  # an empty reference is a reference too
            request.reference.labels.extend(job.reference)
        try:
            reply = await self.stub.Refine(
                request, timeout=timeout, metadata=((REQUEST_ID_KEY, job.request_id),)
            )
        except grpc.aio.AioRpcError as exc:
            code = _PASS_THROUGH.get(exc.code(), Code.UNAVAILABLE)
            # The refiner's RetryInfo (a full model queue) reaches the client unchanged.
            retry_after = retry_delay(exc) or None
            raise GatewayError(code, f"refiner: {(exc.details() or '')[:500]}", retry_after) from None
        return Refined(reply.result, reply.result.version.model)

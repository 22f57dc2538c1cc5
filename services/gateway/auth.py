"""API keys: `authorization: Bearer KEY` on every call but health and reflection."""

from __future__ import annotations

import hmac

import grpc

from services.common.interceptors import rewrap_handler


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    """Requires `authorization: Bearer KEY`; health and reflection stay open.

    Keys are compared in constant time. A refused call is answered UNAUTHENTICATED by a handler
    of the method's own kind before it reads any message, so a stream without a key is refused at
    once instead of holding the server while it waits for a message.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = tuple(key.encode() for key in keys)

    def _allowed(self, metadata) -> bool:
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                token = value.removeprefix("Bearer ").strip().encode()
                # Every key is compared, so the time taken does not say which one nearly matched.
                return any([hmac.compare_digest(token, known) for known in self.keys])
        return False

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        if self._allowed(handler_call_details.invocation_metadata):
            return handler

        async def deny(request_or_iterator, context):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "missing or unknown API key (authorization: Bearer KEY)"
            )

        async def deny_stream(request_or_iterator, context):
            await deny(request_or_iterator, context)
            yield  # never reached: makes this a stream of responses, as the method's kind wants

        return rewrap_handler(
            handler, lambda behavior, streaming_response: deny_stream if streaming_response else deny
        )

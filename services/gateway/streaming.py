"""StreamTag: images in, answers out in completion order, with flow control both ways.

At most `stream_window` images of a stream are held at once, counting both those being tagged
and answers not yet taken by the client: the next image is read only when an answer has been
handed to gRPC. A client that stops reading its answers therefore stops the stream from reading
its images (HTTP/2 flow control then holds the client's sends), and what it costs the gateway
stays bounded. A stream that sends nothing for `stream_idle_seconds` is ended after its answers.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from services.common.grpc_server import abort_with
from tagllm.v1 import tagging_pb2

# Tags one image of the stream: (item, request id) -> (status, response or None).
TagItem = Callable[[tagging_pb2.TagRequest, str], Awaitable[tuple]]


async def answer_stream(
    request_iterator: AsyncIterator[tagging_pb2.TagRequest],
    context: grpc.aio.ServicerContext,
    tag_item: TagItem,
    base_id: str,
    window_size: int,
    idle_seconds: float,
) -> AsyncIterator[tagging_pb2.StreamTagResponse]:
    window = asyncio.Semaphore(window_size)
    answers: asyncio.Queue = asyncio.Queue()
    tasks: set[asyncio.Task] = set()
    idle = False

    async def work(item, request_id):
        status, response = await tag_item(item, request_id)
        await answers.put(
            tagging_pb2.StreamTagResponse(image_id=item.image.id, status=status, response=response)
        )

    async def read():
        nonlocal idle
        messages = aiter(request_iterator)
        try:
            for i in itertools.count():
                await window.acquire()  # released when an answer has been handed to gRPC
                try:
                    item = await asyncio.wait_for(anext(messages), idle_seconds)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    idle = True
                    break
                task = asyncio.create_task(work(item, f"{base_id}.{i}"))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
        finally:
            await answers.put(None)

    reader = asyncio.create_task(read())
    try:
        while (answer := await answers.get()) is not None:
            yield answer  # returns once gRPC has taken it: a client that does not read holds it here
            window.release()
        await reader  # surfaces a broken input stream
    finally:  # the client went away or the stream failed: no work for nobody
        reader.cancel()
        for task in tasks:
            task.cancel()
    if idle:
        await abort_with(
            context,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"no message for {idle_seconds:g} s; the stream was closed after answering every image it sent",
        )

"""StreamTag's flow control: images in, answers out in completion order, bounded both ways.

At most `window_size` images of a stream are held at once, counting both those being tagged
and answers not yet taken by the client: the next image is read only when an answer has been
taken from this generator (the servicer takes it only once gRPC has sent it on). A client that
stops reading its answers therefore stops the stream from reading its images (HTTP/2 flow
control then holds the client's sends), and what it costs the gateway stays bounded. A stream
that sends nothing for `idle_seconds` is ended after its answers, with DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from services.gateway.contract import Code, GatewayError

Item = TypeVar("Item")
Result = TypeVar("Result")


async def answer_stream(
    items: AsyncIterable[Item],
    answer: Callable[[Item, str], Awaitable[Result]],
    base_id: str,
    window_size: int,
    idle_seconds: float,
) -> AsyncIterator[Result]:
    """`answer(item, request_id)` for each item, yielded as each is done; `answer` must not
    raise for one item's failure (it is that item's answer)."""
    window = asyncio.Semaphore(window_size)
    answers: asyncio.Queue = asyncio.Queue()
    tasks: set[asyncio.Task] = set()
    idle = False

    async def work(item: Item, request_id: str) -> None:
        await answers.put(await answer(item, request_id))

    async def read() -> None:
        nonlocal idle
        messages = aiter(items)
        try:
            for i in itertools.count():
                await window.acquire()  # released when an answer has been taken
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
            await answers.put(_END)

    reader = asyncio.create_task(read())
    try:
        while (result := await answers.get()) is not _END:
            yield result  # returns once it is taken: a client that does not read holds it here
            window.release()
        await reader  # surfaces a broken input stream
    finally:  # the client went away or the stream failed: no work for nobody
        reader.cancel()
        for task in tasks:
            task.cancel()
    if idle:
        raise GatewayError(
            Code.DEADLINE_EXCEEDED,
            f"no message for {idle_seconds:g} s; the stream was closed after answering every image it sent",
        )


_END = object()  # after the last answer

"""Calling the example service, the async way and the blocking way.

Start ``service.py`` first, then run ``python examples/example_client/client.py [URL]``
(default ``http://127.0.0.1:8000/api``).
"""

from __future__ import annotations

import asyncio
import sys
import time

import gemstone_aio as gemstone


async def async_usage(url: str) -> None:
    async with gemstone.RemoteService(url, timeout=10) as service:
        print(await service.methods.say_hello(name="async world"))
        print(await service.call("say_hello", "call"))

        # Parallel calls overlap: three 1 s calls take about 1 s.
        started = time.monotonic()
        replies = await asyncio.gather(*(service.methods.slow_method(seconds=1) for _ in range(3)))
        print(replies)
        print(f"async: 3 parallel calls took {time.monotonic() - started:.1f} s")

        # A batch: one HTTP request, one future per call.
        async with service.batch() as batch:
            first = batch.call("say_hello", "first")
            second = batch.call("say_hello", "second")
        print(first.result(), "/", second.result())


def blocking_usage(url: str) -> None:
    # The way the gemstone docs show it: no event loop, no await.
    with gemstone.RemoteService(url, timeout=10) as client:
        print(client.methods.say_hello("world"))

        res = client.methods.slow_method(seconds=1, __async=True)
        print("finished?", res.finished())
        res.wait()
        print(res.result(), "| error:", res.error())

        started = time.monotonic()
        calls = [client.methods.slow_method(seconds=1, __async=True) for _ in range(3)]
        gemstone.make_callbacks(
            calls,
            on_result=lambda result: print("callback:", result),
            on_error=lambda error: print("callback error:", error),
        )
        print(f"blocking: 3 parallel calls took {time.monotonic() - started:.1f} s")

        try:
            client.methods.no_such_method()
        except gemstone.CalledServiceError as error:
            print("error:", error.code, error.message)


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/api"
    asyncio.run(async_usage(url))
    blocking_usage(url)

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
    # --8<-- [start:async]
    async with gemstone.RemoteService(url, timeout=10) as service:
        print(await service.methods.say_hello(name="async world"))  # params by name
        print(await service.call("say_hello", "call"))  # params by position

        # Parallel calls are plain asyncio: three 1 s calls take about 1 s.
        started = time.monotonic()
        replies = await asyncio.gather(*(service.methods.slow_method(seconds=1) for _ in range(3)))
        print(replies)
        print(f"async: 3 parallel calls took {time.monotonic() - started:.1f} s")
        # --8<-- [end:async]

        # --8<-- [start:batch]
        async with service.batch() as batch:  # one HTTP request, one future per call
            first = batch.call("say_hello", "first")
            second = batch.call("say_hello", "second")
        print(first.result(), "/", second.result())
        # --8<-- [end:batch]


def blocking_usage(url: str) -> None:
    # --8<-- [start:blocking]
    # The way the gemstone docs show it: no event loop, no await.
    with gemstone.RemoteService(url, timeout=10) as client:
        print(client.methods.say_hello("world"))
        # --8<-- [end:blocking]

        # --8<-- [start:async-call]
        res = client.methods.slow_method(seconds=1, __async=True)  # returns at once
        print("finished?", res.finished())
        res.wait()  # blocks; returns the result or raises the call's error
        print(res.result(), "| error:", res.error())
        # --8<-- [end:async-call]

        # --8<-- [start:callbacks]
        started = time.monotonic()
        calls = [client.methods.slow_method(seconds=1, __async=True) for _ in range(3)]
        gemstone.make_callbacks(
            calls,
            on_result=lambda result: print("callback:", result),
            on_error=lambda error: print("callback error:", error),
        )
        print(f"blocking: 3 parallel calls took {time.monotonic() - started:.1f} s")

        calls = [client.methods.slow_method(seconds=s, __async=True) for s in (0.2, 0.1)]
        for call in gemstone.as_completed(*calls, timeout=10):  # the first finished first
            print("as completed:", call.result())
        quickest = gemstone.first_completed(*calls, timeout=10)
        print("first completed:", quickest.result())
        # --8<-- [end:callbacks]

        # --8<-- [start:call-method-async]
        # gemstone 0.10's form: a method name and its params (a list, a tuple or a dict).
        calls = [client.call_method_async("slow_method", {"seconds": s}) for s in (0.2, 0.1)]
        for call in gemstone.as_completed(*calls, timeout=10):
            print("call_method_async:", call.result())
        print("successful?", calls[0].successful(), "|", calls[0].result(wait=True))
        # --8<-- [end:call-method-async]

        # --8<-- [start:errors]
        try:
            client.methods.no_such_method()
        except gemstone.CalledServiceError as error:
            print("error:", error.code, error.message)
        # --8<-- [end:errors]


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/api"
    asyncio.run(async_usage(url))
    blocking_usage(url)

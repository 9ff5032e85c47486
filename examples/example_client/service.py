"""The service the client example talks to.

Run it with ``python examples/example_client/service.py [--port=PORT]`` (default 8000; ``0``
picks a free port, which the "serving at" log line shows).
"""

from __future__ import annotations

import asyncio

import gemstone_aio as gemstone


class ExampleService(gemstone.MicroService):
    name = "example_client_service"
    host = "127.0.0.1"
    port = 8000

    @gemstone.exposed_method()
    def say_hello(self, name: str) -> str:
        return f"hello {name}"

    @gemstone.exposed_method()
    async def slow_method(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"finished sleeping for {seconds} seconds"


if __name__ == "__main__":
    # Configurable from the command line: ``--port=8001`` (``--port=0`` picks a free port).
    ExampleService().start()

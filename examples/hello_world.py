"""The hello world of the gemstone docs, on gemstone-aio.

Run it with ``python examples/hello_world.py`` and call it::

    curl -X POST -H "Content-Type: application/json" \
        -d '{"jsonrpc": "2.0", "method": "say_hello", "id": 1}' http://127.0.0.1:8000/api
"""

import gemstone_aio as gemstone


class HelloWorldService(gemstone.MicroService):
    name = "hello_world_service"
    host = "127.0.0.1"
    port = 8000

    @gemstone.exposed_method()
    def say_hello(self, name: str = "world") -> str:
        return f"hello {name}"


if __name__ == "__main__":
    service = HelloWorldService()
    service.start()

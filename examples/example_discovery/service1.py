"""The first service of the discovery example: it greets, and asks ``service.2`` to shout.

Run the registry, then ``python service1.py`` and ``python service2.py``.
``PORT`` and ``REGISTRY_URL`` override where it listens and which registry it uses.
"""

import os

import gemstone_aio as gemstone


class FirstService(gemstone.MicroService):
    name = "service.1"
    port = 8001
    service_registry_urls: tuple[str, ...] = ("http://127.0.0.1:5000/api",)
    service_registry_ping_interval = 5

    @gemstone.exposed_method()
    async def greet(self, name: str) -> str:
        return f"hello {name}"

    @gemstone.exposed_method()
    async def greet_loudly(self, name: str) -> str:
        shouter = await self.get_service("service.2")
        loud: str = await shouter.call("shout", f"hello {name}")
        return loud


if __name__ == "__main__":
    service = FirstService()
    service.port = int(os.environ.get("PORT", service.port))
    service.service_registry_urls = (os.environ.get("REGISTRY_URL", "http://127.0.0.1:5000/api"),)
    service.refresh_accessible_at()
    service.start()

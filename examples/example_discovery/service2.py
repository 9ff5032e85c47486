"""The second service of the discovery example: it shouts, and asks ``service.1`` to greet.

``PORT`` and ``REGISTRY_URL`` override where it listens and which registry it uses.
"""

import os

import gemstone_aio as gemstone


class SecondService(gemstone.MicroService):
    name = "service.2"
    port = 8002
    service_registry_urls: tuple[str, ...] = ("http://127.0.0.1:5000/api",)
    service_registry_ping_interval = 5

    @gemstone.exposed_method()
    async def shout(self, text: str) -> str:
        return text.upper() + "!"

    @gemstone.exposed_method()
    async def shouted_greeting(self, name: str) -> str:
        greeter = await self.get_service("service.1")
        greeting: str = await greeter.call("greet", name)
        return await self.shout(greeting)


if __name__ == "__main__":
    service = SecondService()
    service.port = int(os.environ.get("PORT", service.port))
    service.service_registry_urls = (os.environ.get("REGISTRY_URL", "http://127.0.0.1:5000/api"),)
    service.refresh_accessible_at()
    service.start()

"""A service assembled from modules: each module groups its own exposed methods.

Run it with ``python examples/modules_service.py`` and call ``module1.say_hello`` or
``module2.say_hello``.
"""

from __future__ import annotations

import gemstone_aio as gemstone


class FirstModule(gemstone.Module):
    @gemstone.exposed_method("module1.say_hello")
    def say_hello(self, name: str = "world") -> str:
        return f"hello {name} from module 1 of {self.microservice.name}"


class SecondModule(gemstone.Module):
    @gemstone.exposed_method("module2.say_hello")
    async def say_hello(self, name: str = "world") -> str:
        return f"hello {name} from module 2 of {self.microservice.name}"


class ModularService(gemstone.MicroService):
    name = "modular_service"
    modules = [FirstModule(), SecondModule()]


if __name__ == "__main__":
    ModularService().start()

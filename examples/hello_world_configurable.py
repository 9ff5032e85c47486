"""The hello world of the gemstone docs, with configurables.

Every configurable is a command-line option; the values are set on the service before
``on_service_start`` runs::

    python examples/hello_world_configurable.py --port=8001 --a=first --b=2 --c=x,y,z
    python examples/hello_world_configurable.py --help

Environment variables (``HELLO_WORLD_SERVICE_B=3``) work too; the command line wins
because its configurator comes last.
"""

from __future__ import annotations

from collections.abc import Sequence

import gemstone_aio as gemstone
from gemstone_aio.config import as_int, comma_list


class HelloWorldService(gemstone.MicroService):
    name = "hello_world_service"
    host = "127.0.0.1"
    port = 8000

    a: str = "default a"
    b: int = 1
    c: Sequence[str] = ()

    configurables = [
        gemstone.Configurable("a", help="any text"),
        gemstone.Configurable("b", template=as_int, help="an integer"),
        gemstone.Configurable("c", template=comma_list, help="a comma-separated list"),
    ]
    configurators = [
        gemstone.EnvironmentConfigurator(),  # HELLO_WORLD_SERVICE_A, _B, _C, _PORT, ...
        gemstone.CommandLineConfigurator(),  # --a, --b, --c, --port, ...
    ]

    def on_service_start(self) -> None:
        print(f"a={self.a!r} b={self.b!r} c={self.c!r}", flush=True)

    @gemstone.exposed_method()
    def say_hello(self, name: str = "world") -> str:
        return f"hello {name}"

    @gemstone.exposed_method()
    def configuration(self) -> dict[str, object]:
        return self.get_current_configuration()


if __name__ == "__main__":
    HelloWorldService().start()

"""Modules: groups of exposed methods and event handlers mounted on a service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import GemstoneError
from ..protocol._collection import collect_event_handlers, collect_exposed

if TYPE_CHECKING:
    from ._microservice import MicroService

__all__ = ["Container", "Module"]


class Module:
    """A group of exposed methods and event handlers, added with ``modules = [...]``.

    Inside its methods, ``self.microservice`` is the service the module is mounted on.
    """

    __gemstone_exposed__: ClassVar[dict[str, str]] = {}
    __gemstone_events__: ClassVar[dict[str, list[str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__gemstone_exposed__ = collect_exposed(cls)
        cls.__gemstone_events__ = collect_event_handlers(cls)

    _microservice: MicroService | None = None

    def set_microservice(self, microservice: MicroService) -> None:
        """Attach the module to its service (done by the service)."""
        self._microservice = microservice

    @property
    def microservice(self) -> MicroService:
        """The service this module is mounted on.

        Raises:
            GemstoneError: The module is not mounted on a service yet.
        """
        if self._microservice is None:
            raise GemstoneError(f"{type(self).__qualname__} is not mounted on a service")
        return self._microservice


Container = Module
"""The name gemstone 0.10 shipped ``Module`` under."""

"""The server layer: the service class and the one composition root, ``make_app``.

Everything below this layer (the protocol layer and the features) is wired into an
aiohttp application here; nothing below imports it.
"""

from ._app import (
    CONNECTIONS_KEY,
    EVENTS_KEY,
    IN_FLIGHT_KEY,
    PERIODIC_KEY,
    POOL_KEY,
    ROUTER_KEY,
    SERVICE_KEY,
    SERVING_KEY,
    STOPPING_KEY,
    build_router,
    make_app,
)
from ._discovery import Discovery
from ._handlers import GemstoneCustomHandler, RequestHandler, current_handler
from ._microservice import MicroService
from ._module import Container, Module
from ._observability import METRICS_KEY
from ._selfdescription import SELF_DESCRIPTION_KEY
from ._serving import SHUTDOWN_MARGIN, app_factory, run, serve
from ._templates import render_template

__all__ = [
    "CONNECTIONS_KEY",
    "EVENTS_KEY",
    "IN_FLIGHT_KEY",
    "METRICS_KEY",
    "PERIODIC_KEY",
    "POOL_KEY",
    "ROUTER_KEY",
    "SELF_DESCRIPTION_KEY",
    "SERVICE_KEY",
    "SERVING_KEY",
    "SHUTDOWN_MARGIN",
    "STOPPING_KEY",
    "Container",
    "Discovery",
    "GemstoneCustomHandler",
    "MicroService",
    "Module",
    "RequestHandler",
    "app_factory",
    "build_router",
    "current_handler",
    "make_app",
    "render_template",
    "run",
    "serve",
]

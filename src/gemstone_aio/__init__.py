"""gemstone-aio: microservices as plain Python classes.

Exposed methods are served as JSON-RPC 2.0 over HTTP (aiohttp); services call each
other with :class:`RemoteService`, find each other through a registry, and publish and
subscribe to events over RabbitMQ. Migrating from gemstone 0.10 means
``import gemstone_aio as gemstone``.
"""

from ._compat import (
    async_method,
    private_api_method,
    public_method,
    requires_handler_reference,
)
from ._version import __version__
from .auth import (
    BaseValidationStrategy,
    BasicCookieStrategy,
    HeaderValidationStrategy,
    TokenIdentity,
    tokens_equal,
)
from .client import (
    AsyncMethodCall,
    RemoteService,
    as_completed,
    first_completed,
    make_callbacks,
)
from .config import (
    BaseConfigurator,
    CommandLineConfigurator,
    Configurable,
    EnvironmentConfigurator,
    JsonFileConfigurator,
)
from .errors import (
    AccessDenied,
    CalledServiceError,
    EventBodyError,
    EventPublishError,
    GemstoneError,
    InternalError,
    InvalidParams,
    InvalidRequest,
    JsonRpcError,
    MethodNotFound,
    MethodTimeout,
    ParseError,
    RequestTooLarge,
    ServerOverloaded,
    ServiceConfigurationError,
    ServiceShuttingDown,
)
from .event import BaseEventTransport, InMemoryEventTransport, RabbitMqEventTransport
from .protocol import EmittedEvent, emits, event_handler, exposed_method, time_left
from .server import (
    Container,
    GemstoneCustomHandler,
    MicroService,
    Module,
    RequestHandler,
    current_handler,
    render_template,
)
from .tls import CertificateIdentity, peer_certificate

__all__ = [
    "AccessDenied",
    "AsyncMethodCall",
    "BaseConfigurator",
    "BaseEventTransport",
    "BaseValidationStrategy",
    "BasicCookieStrategy",
    "CalledServiceError",
    "CertificateIdentity",
    "CommandLineConfigurator",
    "Configurable",
    "Container",
    "EmittedEvent",
    "EnvironmentConfigurator",
    "EventBodyError",
    "EventPublishError",
    "GemstoneCustomHandler",
    "GemstoneError",
    "HeaderValidationStrategy",
    "InMemoryEventTransport",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "JsonFileConfigurator",
    "JsonRpcError",
    "MethodNotFound",
    "MethodTimeout",
    "MicroService",
    "Module",
    "ParseError",
    "RabbitMqEventTransport",
    "RemoteService",
    "RequestHandler",
    "RequestTooLarge",
    "ServerOverloaded",
    "ServiceConfigurationError",
    "ServiceShuttingDown",
    "TokenIdentity",
    "__version__",
    "as_completed",
    "async_method",
    "current_handler",
    "emits",
    "event_handler",
    "exposed_method",
    "first_completed",
    "make_callbacks",
    "peer_certificate",
    "private_api_method",
    "public_method",
    "render_template",
    "requires_handler_reference",
    "time_left",
    "tokens_equal",
]

from . import _compat

_compat.install_legacy_paths()

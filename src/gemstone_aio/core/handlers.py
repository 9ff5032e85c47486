"""Objects that give service code access to the HTTP side.

- :class:`RequestHandler` is what ``requires_handler_reference`` methods receive: the
  aiohttp request, the caller's identity, the service, and a way to set response
  headers and cookies.
- :func:`current_handler` returns the same object from anywhere inside a call (also in
  blocking methods running in the pool), for new code that prefers not to take it as a
  parameter.
- :class:`GemstoneCustomHandler` is an aiohttp class-based view that knows its service,
  for ``extra_handlers``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from multidict import CIMultiDict

from ..errors import GemstoneError

if TYPE_CHECKING:
    from .microservice import MicroService

__all__ = [
    "GemstoneCustomHandler",
    "HandlerSource",
    "RequestHandler",
    "current_handler",
    "handler_source_var",
]


class HandlerSource(Protocol):
    """Whatever :func:`current_handler` reads the handler from (one per HTTP request)."""

    @property
    def handler(self) -> RequestHandler:
        """The request's handler object (built on first use by the framework's source)."""
        ...


handler_source_var: contextvars.ContextVar[HandlerSource] = contextvars.ContextVar(
    "gemstone_aio_handler"
)
"""Where :func:`current_handler` finds the handler of the call being served."""


class _Given:
    __slots__ = ("handler",)

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler


class RequestHandler:
    """The handler object of one HTTP request to the JSON-RPC endpoint.

    Attributes:
        request: The aiohttp request.
        microservice: The service answering it.
        identity: What the service's authentication returned for the caller (``None``
            when the caller did not authenticate or nothing was asked yet).
    """

    def __init__(self, request: web.Request, microservice: MicroService) -> None:
        self.request = request
        self.microservice = microservice
        self.identity: Any = None
        self._headers: CIMultiDict[str] | None = None
        self._cookies: list[tuple[str, str, dict[str, Any]]] = []
        self._deleted_cookies: list[tuple[str, dict[str, Any]]] = []
        # Set by the app: runs the access check once per HTTP request (see auth.access).
        self.authenticator: Callable[[], Awaitable[bool]] | None = None

    async def authenticate(self) -> Any:
        """Run the service's access check now (once per HTTP request) and return the identity.

        Private methods need not call it: they run only after the check admitted the
        caller. Public methods call it to learn who is calling, if anyone (``None``).
        """
        if self.authenticator is not None:
            await self.authenticator()
        return self.identity

    @property
    def response_headers(self) -> CIMultiDict[str]:
        """Headers added to the HTTP response (created on first use)."""
        if self._headers is None:
            self._headers = CIMultiDict()
        return self._headers

    @property
    def current_user(self) -> Any:
        """The identity (the name Tornado handlers used in gemstone 0.10)."""
        return self.identity

    @property
    def headers(self) -> Any:
        """The request headers (case-insensitive)."""
        return self.request.headers

    @property
    def cookies(self) -> Any:
        """The request cookies."""
        return self.request.cookies

    def get_header(self, name: str, default: str | None = None) -> str | None:
        """Return a request header (case-insensitive) or ``default``."""
        return self.request.headers.get(name, default)

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """Return a request cookie or ``default``."""
        return self.request.cookies.get(name, default)

    def set_header(self, name: str, value: str) -> None:
        """Set a header of the HTTP response."""
        self.response_headers[name] = value

    def set_cookie(self, name: str, value: str, **options: Any) -> None:
        """Set a cookie on the HTTP response.

        ``options`` are those of :meth:`aiohttp.web.StreamResponse.set_cookie`
        (``max_age``, ``path``, ``secure``, ``httponly``, ``samesite``, ...).
        """
        self._cookies.append((name, value, options))

    def clear_cookie(self, name: str, **options: Any) -> None:
        """Delete a cookie in the caller's browser."""
        self._deleted_cookies.append((name, options))

    def apply_to(self, response: web.StreamResponse) -> None:
        """Copy the headers and cookies set by methods onto ``response``."""
        if self._headers is not None:
            response.headers.extend(self._headers)
        for name, value, options in self._cookies:
            response.set_cookie(name, value, **options)
        for name, options in self._deleted_cookies:
            response.del_cookie(name, **options)

    def activate(self) -> contextvars.Token[HandlerSource]:
        """Make this the handler :func:`current_handler` returns.

        The framework's endpoint does not call it: it sets :data:`handler_source_var`
        to a source that builds the handler only when something asks for it.
        """
        return handler_source_var.set(_Given(self))

    @staticmethod
    def deactivate(token: contextvars.Token[HandlerSource]) -> None:
        """Undo :meth:`activate`."""
        handler_source_var.reset(token)


def current_handler() -> RequestHandler:
    """Return the handler of the JSON-RPC call being served.

    Raises:
        GemstoneError: Called outside a JSON-RPC call.
    """
    try:
        return handler_source_var.get().handler
    except LookupError:
        raise GemstoneError("current_handler() was called outside a JSON-RPC call") from None


class GemstoneCustomHandler(web.View):
    """An aiohttp class-based view for ``extra_handlers`` that knows its service.

    Define ``async def get(self)`` (and so on) and read ``self.microservice``.
    """

    @property
    def microservice(self) -> MicroService:
        """The service that mounted this handler."""
        from .app import SERVICE_KEY

        return self.request.app[SERVICE_KEY]

    def render(
        self, template_name: str, context: dict[str, Any] | None = None, *, status: int = 200
    ) -> web.Response:
        """Render a Jinja2 template of the service's ``template_dir`` into a response.

        Needs the ``templates`` extra; see :func:`gemstone_aio.core.templates.render_template`.
        """
        from .templates import render_template

        return render_template(self.request, template_name, context, status=status)

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

from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import CIMultiDict

from ..errors import GemstoneError
from ..protocol import CallContext, current_call
from ..tls import CertificateIdentity, peer_certificate

if TYPE_CHECKING:
    from ._microservice import MicroService

__all__ = [
    "GemstoneCustomHandler",
    "RequestHandler",
    "current_handler",
]


class RequestHandler:
    """The handler object of one HTTP request to the JSON-RPC endpoint.

    Attributes:
        request: The aiohttp request.
        microservice: The service answering it.
        identity: What the service's authentication returned for the caller (``None``
            when the caller did not authenticate or nothing was asked yet).
    """

    def __init__(
        self, request: web.Request, microservice: MicroService, context: CallContext | None = None
    ) -> None:
        self.request = request
        self.microservice = microservice
        self._context = context
        self._headers: CIMultiDict[str] | None = None
        self._cookies: list[tuple[str, str, dict[str, Any]]] = []
        self._deleted_cookies: list[tuple[str, dict[str, Any]]] = []

    @property
    def identity(self) -> Any:
        """What the service's authentication returned for the caller.

        ``None`` when the caller did not authenticate or nothing asked yet.
        """
        return None if self._context is None else self._context.known_identity

    async def authenticate(self) -> Any:
        """Run the service's access check now (once per HTTP request) and return the identity.

        Private methods need not call it: they run only after the check admitted the
        caller. Public methods call it to learn who is calling, if anyone (``None``).
        """
        return None if self._context is None else await self._context.identity()

    @property
    def peer_certificate(self) -> CertificateIdentity | None:
        """The caller's verified client certificate (mutual TLS), or ``None``.

        ``None`` unless the service verifies client certificates (``ssl_ca_certs``) and
        the caller presented one; see :func:`gemstone_aio.tls.peer_certificate`.
        """
        return peer_certificate(self.request)

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


def current_handler() -> RequestHandler:
    """Return the handler of the JSON-RPC call being served.

    Raises:
        GemstoneError: Called outside a JSON-RPC call.
    """
    try:
        context = current_call.get()
    except LookupError:
        raise GemstoneError("current_handler() was called outside a JSON-RPC call") from None
    return context.handler  # type: ignore[no-any-return]


class GemstoneCustomHandler(web.View):
    """An aiohttp class-based view for ``extra_handlers`` that knows its service.

    Define ``async def get(self)`` (and so on) and read ``self.microservice``.
    """

    @property
    def microservice(self) -> MicroService:
        """The service that mounted this handler."""
        from ._app import SERVICE_KEY  # the app module imports this one

        return self.request.app[SERVICE_KEY]

    def render(
        self, template_name: str, context: dict[str, Any] | None = None, *, status: int = 200
    ) -> web.Response:
        """Render a Jinja2 template of the service's ``template_dir`` into a response.

        Needs the ``templates`` extra; see :func:`gemstone_aio.core.templates.render_template`.
        """
        from ._templates import render_template

        return render_template(self.request, template_name, context, status=status)

"""How a running service describes itself.

:func:`install` (called by ``make_app``) adds to every service:

- the JSON-RPC method ``rpc.discover``, returning the OpenRPC document
  (:mod:`gemstone_aio.openrpc`);
- the JSON-RPC method ``get_service_specs``, gemstone 0.10's description (unless the
  service exposes a method of that name itself);
- ``GET {endpoint}/openrpc.json``: the same document over plain HTTP;
- ``GET {endpoint}/asyncapi.json``: the AsyncAPI 3.0 document of the events the service
  emits and handles (:mod:`gemstone_aio.selfdescription`);
- ``GET {endpoint}/docs``: a self-contained HTML page (no external assets) listing the
  methods, their params, types and docs, with a form to try each one, and the events.

Private methods appear in all four only when the caller authenticates, the same way a
call to a private method does (the service's ``authenticate_request``).
"""

from __future__ import annotations

import asyncio
import functools
import html
import importlib.resources
import re
import secrets
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from ..protocol import CallContext, MethodEntry, Router
from ..protocol import _jsonrpc as jsonrpc
from ..protocol._decorators import MethodSpec
from ..selfdescription._asyncapi import build_asyncapi_document
from ..selfdescription._events import EventCatalogue
from ..selfdescription._openrpc import (
    DISCOVER_METHOD,
    asyncapi_url,
    build_document,
    check_examples,
    service_specs,
)
from ._access import authenticate

if TYPE_CHECKING:
    from ._microservice import MicroService

__all__ = ["SELF_DESCRIPTION_KEY", "SPECS_METHOD", "SelfDescription", "install"]

SPECS_METHOD: Final = "get_service_specs"
"""The name of gemstone 0.10's built-in description method."""

_NO_STORE: Final = {"Cache-Control": "no-store"}
_PLACEHOLDER: Final = re.compile(r"\{\{(TITLE|NONCE|CONFIG)\}\}")


@functools.cache
def _page_template() -> str:
    return (
        importlib.resources.files("gemstone_aio")
        .joinpath("_static", "docs.html")
        .read_text(encoding="utf-8")
    )


def _script_json(value: Any) -> str:
    # JSON placed inside <script>: no "<" may appear, so "</script>" cannot close it early.
    text = jsonrpc.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class SelfDescription:
    """The self-description of one served service (one per application).

    Documents are generated on first use and cached (one for anonymous callers, one
    for authenticated ones, and the events' AsyncAPI document); ``servers`` and
    ``x-asyncapi`` are filled in on every request, as the port is only known once the
    service listens.

    Args:
        service: The service described.
        router: Its router, whose method table is described.

    Raises:
        ServiceConfigurationError: The service's event declarations are invalid.
    """

    def __init__(self, service: MicroService, router: Router) -> None:
        self.service = service
        self.router = router
        self.events: Final = EventCatalogue([service, *service.modules])
        self._documents: dict[bool, dict[str, Any]] = {}
        self._asyncapi: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        base = service.endpoint.rstrip("/")
        self.openrpc_path: Final = f"{base}/openrpc.json"
        self.asyncapi_path: Final = f"{base}/asyncapi.json"
        self.docs_path: Final = f"{base}/docs"

    def _build(self, include_private: bool) -> dict[str, Any]:
        document = build_document(
            self.service, self.router.methods, include_private=include_private, events=self.events
        )
        document.pop("servers", None)
        document.pop("x-asyncapi", None)
        return document

    async def document_async(self, *, include_private: bool) -> dict[str, Any]:
        """Like :meth:`document`, but a first generation runs in a worker thread.

        Generating the schemas of a service with hundreds of methods takes seconds
        (``bench/openrpc_document.py``); the event loop keeps serving meanwhile.
        """
        if include_private not in self._documents:
            async with self._lock:
                if include_private not in self._documents:
                    built = await asyncio.to_thread(self._build, include_private)
                    self._documents[include_private] = built
        return self.document(include_private=include_private)

    def document(self, *, include_private: bool) -> dict[str, Any]:
        """Return the OpenRPC document, with or without the private methods."""
        cached = self._documents.get(include_private)
        if cached is None:
            cached = self._documents[include_private] = self._build(include_private)
        document = dict(cached)
        if self.service.accessible_at:
            document["servers"] = [
                {"name": str(self.service.name), "url": self.service.accessible_at}
            ]
            if self.events:
                document["x-asyncapi"] = asyncapi_url(self.service.accessible_at)
            # Keep the specification's key order: servers before methods.
            document = {
                key: document[key]
                for key in ("openrpc", "info", "servers", "methods", "components", "x-asyncapi")
                if key in document
            }
        return document

    def asyncapi_document(self) -> dict[str, Any]:
        """Return the AsyncAPI 3.0 document of the service's events (the same for everyone)."""
        if self._asyncapi is None:
            self._asyncapi = build_asyncapi_document(self.service, self.events)
        return self._asyncapi

    async def asyncapi_document_async(self) -> dict[str, Any]:
        """Like :meth:`asyncapi_document`, but a first generation runs in a worker thread."""
        if self._asyncapi is None:
            async with self._lock:
                if self._asyncapi is None:
                    built = await asyncio.to_thread(
                        build_asyncapi_document, self.service, self.events
                    )
                    self._asyncapi = built
        return self._asyncapi

    # -- the JSON-RPC methods ------------------------------------------------------------

    async def discover(self, context: CallContext) -> dict[str, Any]:
        """Return the OpenRPC document describing this service.

        Private methods are listed only when the caller is authenticated.
        """
        return await self.document_async(include_private=await self._caller_admitted(context))

    async def get_service_specs(self, context: CallContext) -> dict[str, Any]:
        """Describe the service: name, host, port, URL, methods with docs, events handled.

        Private methods are listed only when the caller is authenticated.
        """
        return service_specs(
            self.service,
            self.router.methods,
            include_private=await self._caller_admitted(context),
        )

    # -- HTTP --------------------------------------------------------------------------

    async def _authenticated(self, request: web.Request) -> bool:
        # The same access check as the endpoint's (fails closed if it raises), asked
        # quietly: an anonymous reader is no denied call, so nothing is logged. A service
        # without private methods has nothing to show to the authenticated: no check.
        if not any(entry.spec.private for entry in self.router.methods.values()):
            return False
        return bool(await authenticate(self.service, request, quiet=True))

    async def _caller_admitted(self, context: CallContext) -> bool:
        if context.transport is None:  # not an HTTP request: the context's own check
            return await context.is_authenticated()
        return await self._authenticated(context.transport)

    async def handle_openrpc_json(self, request: web.Request) -> web.Response:
        """``GET {endpoint}/openrpc.json``: the document as a JSON file."""
        document = await self.document_async(include_private=await self._authenticated(request))
        return web.Response(
            body=jsonrpc.dumps(document), content_type="application/json", headers=_NO_STORE
        )

    async def handle_asyncapi_json(self, request: web.Request) -> web.Response:
        """``GET {endpoint}/asyncapi.json``: the events' AsyncAPI document as a JSON file."""
        document = await self.asyncapi_document_async()
        return web.Response(
            body=jsonrpc.dumps(document), content_type="application/json", headers=_NO_STORE
        )

    async def handle_docs(self, request: web.Request) -> web.Response:
        """``GET {endpoint}/docs``: the HTML page (inline CSS and JS only)."""
        document = await self.document_async(include_private=await self._authenticated(request))
        config = {
            "endpoint": self.service.endpoint,
            "openrpc": self.openrpc_path,
            "document": document,
            "asyncapi": await self.asyncapi_document_async(),
        }
        nonce = secrets.token_urlsafe(18)
        values = {
            "TITLE": html.escape(f"{self.service.name} {self.service.version}"),
            "NONCE": nonce,
            "CONFIG": _script_json(config),
        }
        # One pass, so that a value containing a placeholder is never expanded.
        page = _PLACEHOLDER.sub(lambda match: values[match.group(1)], _page_template())
        policy = (
            "default-src 'none'; "
            f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'self'"
        )
        headers = {**_NO_STORE, "Content-Security-Policy": policy}
        return web.Response(text=page, content_type="text/html", headers=headers)


SELF_DESCRIPTION_KEY = web.AppKey("gemstone_aio.self_description", SelfDescription)
"""The application's :class:`SelfDescription`."""


def install(app: web.Application, service: MicroService, router: Router) -> SelfDescription:
    """Add the built-in methods and the three GET routes to a service's application.

    Raises:
        ServiceConfigurationError: A method declares an example that does not fit its
            signature, or the event declarations are invalid (found now rather than by
            the first caller of ``rpc.discover``).
    """
    description = SelfDescription(service, router)
    builtins = (
        (DISCOVER_METHOD, description.discover),
        (SPECS_METHOD, description.get_service_specs),
    )
    for name, func in builtins:
        if name not in router.methods:  # a service's own get_service_specs wins
            spec = MethodSpec(name=name, receives_call_context=True)
            router.methods[name] = MethodEntry.create(spec, func, description)
    for name, entry in router.methods.items():
        check_examples(name, entry)
    app.router.add_get(description.openrpc_path, description.handle_openrpc_json)
    app.router.add_get(description.asyncapi_path, description.handle_asyncapi_json)
    app.router.add_get(description.docs_path, description.handle_docs)
    app[SELF_DESCRIPTION_KEY] = description
    return description

"""Cross-origin access to the JSON-RPC endpoint: off unless the service lists origins.

With ``cors_origins = ["https://app.example.com"]`` browsers on that origin may call
the endpoint (``"*"`` allows any origin). Preflight ``OPTIONS`` requests are answered,
and answers to allowed origins carry ``Access-Control-Allow-Origin``. Other origins get
no CORS headers, so browsers keep blocking them. Credentials (cookies) are allowed only
for explicitly listed origins, never with ``"*"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

__all__ = ["install_cors"]

_ALLOW_HEADERS = "Content-Type, X-Api-Token, Authorization, X-Request-Id, traceparent"


def _allowed(origins: frozenset[str], origin: str | None) -> str | None:
    if origin is None:
        return None
    if origin in origins:
        return origin
    return "*" if "*" in origins else None


def install_cors(app: web.Application, endpoint: str, origins: Sequence[str]) -> None:
    """Answer preflights on ``endpoint`` and label answers for ``origins`` (nothing if empty)."""
    allowed = frozenset(origins)
    if not allowed:
        return

    async def preflight(request: web.Request) -> web.Response:
        origin = _allowed(allowed, request.headers.get("Origin"))
        if origin is None:
            return web.Response(status=403, text="origin not allowed")
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": _ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
        if origin != "*":
            headers["Access-Control-Allow-Credentials"] = "true"
        return web.Response(status=204, headers=headers)

    async def label(request: web.Request, response: web.StreamResponse) -> None:
        if request.path != endpoint:
            return
        origin = _allowed(allowed, request.headers.get("Origin"))
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            if origin != "*":
                response.headers["Access-Control-Allow-Credentials"] = "true"

    app.router.add_route("OPTIONS", endpoint, preflight)
    app.on_response_prepare.append(label)

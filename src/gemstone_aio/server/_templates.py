"""Jinja2 templates through aiohttp-jinja2 (the optional ``templates`` extra).

Set ``template_dir`` on the service and render from an extra handler::

    class Index(GemstoneCustomHandler):
        async def get(self) -> web.StreamResponse:
            return self.render("index.html", {"title": "Hello"})

Autoescaping is on for ``.html``, ``.htm`` and ``.xml`` templates. Without
aiohttp-jinja2 installed, a service with ``template_dir`` fails at start-up with an error
naming the extra to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ..errors import ServiceConfigurationError

__all__ = ["EXTRA_HINT", "render_template", "setup_templates"]

EXTRA_HINT = "pip install 'gemstone-aio[templates]'"


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ServiceConfigurationError(
            f"template_dir needs the optional 'templates' extra ({name} is not installed): "
            f"{EXTRA_HINT}"
        ) from None


def setup_templates(app: web.Application, directory: str) -> None:
    """Make the Jinja2 templates in ``directory`` renderable in ``app``.

    Raises:
        ServiceConfigurationError: aiohttp-jinja2 is not installed, or ``directory`` is not a
            directory.
    """
    aiohttp_jinja2 = _import("aiohttp_jinja2")
    jinja2 = _import("jinja2")
    path = Path(directory)
    if not path.is_dir():
        raise ServiceConfigurationError(f"template_dir {directory!r} is not a directory")
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(path)),
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
    )


def render_template(
    request: web.Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    """Render the template ``name`` with ``context`` into an HTML response.

    Raises:
        ServiceConfigurationError: aiohttp-jinja2 is not installed.
        aiohttp.web.HTTPInternalServerError: The service has no ``template_dir`` or the
            template does not exist (aiohttp-jinja2's behaviour).
    """
    aiohttp_jinja2 = _import("aiohttp_jinja2")
    response: web.Response = aiohttp_jinja2.render_template(
        name, request, dict(context or {}), status=status
    )
    return response

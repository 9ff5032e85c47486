"""A small web page (a template and a static stylesheet) served beside the JSON-RPC API.

Needs the ``templates`` extra. Run ``python examples/web_page.py`` and open
http://127.0.0.1:8000/ ; the page calls ``/api`` with ``fetch``.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

import gemstone_aio as gemstone

HERE = Path(__file__).parent / "web_page"


class IndexPage(gemstone.GemstoneCustomHandler):
    async def get(self) -> web.Response:
        service = self.microservice
        return self.render("index.html", {"service": service.name, "endpoint": service.endpoint})


class WebPageService(gemstone.MicroService):
    name = "web_page_service"
    static_dirs = [("/static", str(HERE / "static"))]
    template_dir = str(HERE / "templates")
    extra_handlers = [("/", IndexPage)]

    @gemstone.exposed_method()
    def say_hello(self, name: str = "world") -> str:
        return f"hello {name}"


if __name__ == "__main__":
    WebPageService().start()

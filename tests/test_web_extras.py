"""Static directories, extra handlers, templates, start_thread and get_logger."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.server import SERVICE_KEY, render_template
from tests.fixtures.config import wait_until

SECRET = "top secret outside the static directory"


async def raw_get(port: int, target: str) -> tuple[int, str]:
    """Send ``GET target`` byte for byte (no client-side normalisation of ``..``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture
def static_tree(tmp_path: Path) -> Path:
    """public/hello.txt inside, secret.txt beside it, and a symlink pointing out."""
    public = tmp_path / "public"
    (public / "css").mkdir(parents=True)
    (public / "hello.txt").write_text("hello static")
    (public / "css" / "site.css").write_text("body { color: black; }")
    (tmp_path / "secret.txt").write_text(SECRET)
    (public / "link.txt").symlink_to(tmp_path / "secret.txt")
    return public


def static_service(directory: Path) -> gemstone.MicroService:
    class Static(gemstone.MicroService):
        name = "static_service"
        static_dirs = [("/static", str(directory))]

    return Static()


async def test_static_files_are_served(aiohttp_client: AiohttpClient, static_tree: Path) -> None:
    """Files under the directory are served beside the API."""
    client = await aiohttp_client(static_service(static_tree).make_app())
    response = await client.get("/static/css/site.css")
    assert response.status == 200
    assert await response.text() == "body { color: black; }"
    assert response.content_type == "text/css"


@pytest.mark.parametrize(
    "target",
    [
        "/static/../secret.txt",
        "/static/css/../../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/..%2Fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/css/%2e%2e/%2e%2e/secret.txt",
        "/static//../secret.txt",
        "/static/link.txt",
    ],
)
async def test_no_path_leaves_the_static_directory(
    aiohttp_client: AiohttpClient, static_tree: Path, target: str
) -> None:
    """``..``, encoded and double-encoded escapes and symlinks never reach outside files."""
    client = await aiohttp_client(static_service(static_tree).make_app())
    assert client.port is not None
    status, body = await raw_get(client.port, target)
    assert status in (400, 403, 404), (status, body)
    assert SECRET not in body


async def test_static_control_request_works_raw(
    aiohttp_client: AiohttpClient, static_tree: Path
) -> None:
    """The raw-request helper itself fetches a legitimate file (the escapes test is sound)."""
    client = await aiohttp_client(static_service(static_tree).make_app())
    assert client.port is not None
    assert await raw_get(client.port, "/static/hello.txt") == (200, "hello static")


class Info(gemstone.GemstoneCustomHandler):
    async def get(self) -> web.Response:
        return web.json_response({"service": self.microservice.name, "via": "custom"})

    async def post(self) -> web.Response:
        return web.json_response({"posted": await self.request.text()})


async def plain(request: web.Request) -> web.Response:
    return web.Response(text=f"plain handler of {request.app[SERVICE_KEY].name}")


class WithHandlers(gemstone.MicroService):
    name = "with_handlers"
    extra_handlers = [("/info", Info), ("/plain", plain)]

    @gemstone.exposed_method()
    def ping(self) -> str:
        return "pong"


async def test_extra_handlers_beside_the_api(aiohttp_client: AiohttpClient) -> None:
    """A GemstoneCustomHandler (with self.microservice) and a plain handler are mounted."""
    client = await aiohttp_client(WithHandlers().make_app())
    response = await client.get("/info")
    assert await response.json() == {"service": "with_handlers", "via": "custom"}
    response = await client.post("/info", data="abc")
    assert await response.json() == {"posted": "abc"}
    response = await client.get("/plain")
    assert await response.text() == "plain handler of with_handlers"
    response = await client.post("/api", json={"jsonrpc": "2.0", "method": "ping", "id": 1})
    assert (await response.json())["result"] == "pong"


async def test_custom_handler_unknown_verb_is_405(aiohttp_client: AiohttpClient) -> None:
    """A verb the view does not define gets 405."""
    client = await aiohttp_client(WithHandlers().make_app())
    response = await client.delete("/info")
    assert response.status == 405


class Page(gemstone.GemstoneCustomHandler):
    async def get(self) -> web.Response:
        name = self.request.query.get("name", "world")
        return self.render("page.html", {"name": name, "service": self.microservice.name})


class Missing(gemstone.GemstoneCustomHandler):
    async def get(self) -> web.Response:
        return self.render("nope.html")


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "page.html").write_text("<p>Hello {{ name }} from {{ service }}</p>")
    return directory


def templated_service(directory: Path) -> gemstone.MicroService:
    class Templated(gemstone.MicroService):
        name = "templated"
        template_dir = str(directory)
        extra_handlers = [("/", Page), ("/missing", Missing)]

    return Templated()


async def test_templates_render_with_autoescape(
    aiohttp_client: AiohttpClient, template_dir: Path
) -> None:
    """Templates render through aiohttp-jinja2, HTML-escaping values."""
    client = await aiohttp_client(templated_service(template_dir).make_app())
    response = await client.get("/", params={"name": "<b>Ann</b>"})
    assert response.status == 200
    assert response.content_type == "text/html"
    assert await response.text() == "<p>Hello &lt;b&gt;Ann&lt;/b&gt; from templated</p>"


async def test_missing_template_is_a_server_error(
    aiohttp_client: AiohttpClient, template_dir: Path
) -> None:
    """A template that does not exist gives HTTP 500."""
    client = await aiohttp_client(templated_service(template_dir).make_app())
    response = await client.get("/missing")
    assert response.status == 500


def test_template_dir_must_exist(tmp_path: Path) -> None:
    """A template_dir that is not a directory stops start-up, naming it."""
    with pytest.raises(gemstone.ServiceConfigurationError, match="is not a directory"):
        templated_service(tmp_path / "absent").make_app()


@pytest.mark.parametrize("module", ["aiohttp_jinja2", "jinja2"])
def test_template_dir_without_the_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, template_dir: Path, module: str
) -> None:
    """Without aiohttp-jinja2 (or Jinja2), the error says which extra to install."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(gemstone.ServiceConfigurationError) as caught:
        templated_service(template_dir).make_app()
    message = str(caught.value)
    assert "'templates' extra" in message
    assert "gemstone-aio[templates]" in message
    assert module in message


async def test_render_without_the_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, aiohttp_client: AiohttpClient
) -> None:
    """Rendering without the extra raises the same clear error."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        try:
            return render_template(request, "x.html")
        except gemstone.ServiceConfigurationError as exc:
            seen.append(str(exc))
            return web.Response(status=500)

    class NoTemplates(gemstone.MicroService):
        name = "no_templates"
        extra_handlers = [("/", handler)]

    client = await aiohttp_client(NoTemplates().make_app())
    monkeypatch.setitem(sys.modules, "aiohttp_jinja2", None)
    assert (await client.get("/")).status == 500
    assert seen == [
        "template_dir needs the optional 'templates' extra (aiohttp_jinja2 is not installed): "
        "pip install 'gemstone-aio[templates]'"
    ]


def test_start_thread_returns_the_running_thread() -> None:
    """start_thread(target, args, kwargs) starts a daemon thread and returns it."""
    results: list[object] = []
    done = threading.Event()

    def work(a: int, b: int, *, scale: int) -> None:
        results.append((a + b) * scale)
        results.append(threading.current_thread())
        done.set()

    service = WithHandlers()
    thread = service.start_thread(work, (1, 2), {"scale": 10})
    assert isinstance(thread, threading.Thread)
    assert done.wait(5)
    thread.join(5)
    assert results == [30, thread]
    assert thread.daemon
    assert thread.name.startswith("with_handlers-work")


async def test_get_logger_is_overridable(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An overridden get_logger is the service's logger, used by the framework too."""
    custom = logging.getLogger("tests.custom_service_logger")
    failures = 0

    def broken() -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("boom")

    class Custom(gemstone.MicroService):
        name = "custom_logger"
        periodic_tasks = [(broken, 0.02)]

        def get_logger(self) -> logging.Logger:
            return custom

    service = Custom()
    assert service.logger is custom
    with caplog.at_level(logging.ERROR, logger="tests.custom_service_logger"):
        await aiohttp_client(service.make_app())
        await wait_until(lambda: failures >= 1 and bool(caplog.records))
    assert caplog.records[0].name == "tests.custom_service_logger"

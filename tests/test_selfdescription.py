"""Self-description over HTTP: rpc.discover, get_service_specs, openrpc.json and /docs."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pydantic
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.server import SELF_DESCRIPTION_KEY
from gemstone_aio.testing import serving
from tests.fixtures.openrpc import assert_valid_openrpc

TOKEN = {"X-Api-Token": "sesame"}


class Secret(pydantic.BaseModel):
    """Only the private method uses this model."""

    code: str


class Notes(gemstone.Module):
    @gemstone.exposed_method()
    def add_note(self, text: str) -> int:
        """Store a note."""
        return len(text)

    @gemstone.event_handler("note.deleted")
    def on_note_deleted(self, body: Any) -> None:
        """Forget a deleted note."""


class Vault(gemstone.MicroService):
    """Keeps secrets.

    Has a </script><script>alert(1)</script> in its docstring.
    """

    name = "vault"
    version = "1.4.0"

    def __init__(self) -> None:
        super().__init__()
        self.auth_calls = 0
        self.modules = [Notes()]

    async def authenticate_request(self, request: web.Request) -> str | None:
        self.auth_calls += 1
        return "admin" if request.headers.get("X-Api-Token") == "sesame" else None

    @gemstone.exposed_method()
    async def ping(self) -> str:
        """Answer pong."""
        return "pong"

    @gemstone.exposed_method(private=True)
    async def reveal(self) -> Secret:
        """Show the secret."""
        return Secret(code="42")

    @gemstone.event_handler("user.created")
    def on_user_created(self, body: Any) -> None:
        """Welcome a new user."""

    @gemstone.event_handler("user.created")
    def audit_user_created(self, body: Any) -> None:
        pass


async def rpc(
    client: Any, method: str, params: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        body["params"] = params
    response = await client.post("/api", json=body, headers=headers or {})
    assert response.status == 200
    answer: dict[str, Any] = await response.json()
    return answer


def names(document: dict[str, Any]) -> list[str]:
    return [method["name"] for method in document["methods"]]


async def test_rpc_discover_returns_a_valid_document(aiohttp_client: AiohttpClient) -> None:
    """rpc.discover answers an OpenRPC document that validates, listing itself and the
    module's methods, for anonymous callers without the private method."""
    client = await aiohttp_client(Vault().make_app())
    answer = await rpc(client, "rpc.discover")
    document = answer["result"]
    assert_valid_openrpc(document)
    assert names(document) == ["ping", "add_note", "rpc.discover", "get_service_specs"]
    assert document["info"]["title"] == "vault"
    assert document["info"]["version"] == "1.4.0"
    assert "Secret" not in document.get("components", {}).get("schemas", {})


async def test_authenticated_callers_see_private_methods(aiohttp_client: AiohttpClient) -> None:
    """With valid credentials rpc.discover lists the private method and its schemas."""
    client = await aiohttp_client(Vault().make_app())
    document = (await rpc(client, "rpc.discover", headers=TOKEN))["result"]
    assert_valid_openrpc(document)
    assert names(document) == ["ping", "reveal", "add_note", "rpc.discover", "get_service_specs"]
    assert "Secret" in document["components"]["schemas"]
    wrong = (await rpc(client, "rpc.discover", headers={"X-Api-Token": "nope"}))["result"]
    assert "reveal" not in names(wrong)


async def test_rpc_discover_takes_no_params(aiohttp_client: AiohttpClient) -> None:
    """rpc.discover with params is -32602, like any method given params it lacks."""
    client = await aiohttp_client(Vault().make_app())
    answer = await rpc(client, "rpc.discover", {"verbose": True})
    assert answer["error"]["code"] == -32602
    answer = await rpc(client, "rpc.discover", [1])
    assert answer["error"]["code"] == -32602


async def test_a_batch_authenticates_once(aiohttp_client: AiohttpClient) -> None:
    """rpc.discover, get_service_specs and a private call in one batch share the single
    authentication of the HTTP request."""
    service = Vault()
    client = await aiohttp_client(service.make_app())
    batch = [
        {"jsonrpc": "2.0", "method": "rpc.discover", "id": 1},
        {"jsonrpc": "2.0", "method": "get_service_specs", "id": 2},
        {"jsonrpc": "2.0", "method": "reveal", "id": 3},
    ]
    response = await client.post("/api", json=batch, headers=TOKEN)
    answers = {answer["id"]: answer for answer in await response.json()}
    assert "reveal" in names(answers[1]["result"])
    assert "reveal" in answers[2]["result"]["methods"]
    assert answers[3]["result"] == {"code": "42"}
    assert service.auth_calls == 1


async def test_get_service_specs_describes_the_service(aiohttp_client: AiohttpClient) -> None:
    """get_service_specs gives gemstone 0.10's description: identity, URL, methods with
    their docstrings (private ones only when authenticated), events handled."""
    service = Vault()
    client = await aiohttp_client(service.make_app())
    specs = (await rpc(client, "get_service_specs"))["result"]
    assert specs == {
        "name": "vault",
        "host": "127.0.0.1",
        "port": 8000,
        "accessible_at": "http://127.0.0.1:8000/api",
        "version": "1.4.0",
        "max_parallel_blocking_tasks": service.max_parallel_blocking_tasks,
        "methods": {
            "ping": "Answer pong.",
            "add_note": "Store a note.",
            "rpc.discover": (
                "Return the OpenRPC document describing this service.\n\n"
                "Private methods are listed only when the caller is authenticated."
            ),
            "get_service_specs": (
                "Describe the service: name, host, port, URL, methods with docs, events "
                "handled.\n\nPrivate methods are listed only when the caller is authenticated."
            ),
        },
        "event_transports": [],
        "events_handled": {
            "user.created": "Welcome a new user.",
            "note.deleted": "Forget a deleted note.",
        },
    }
    private = (await rpc(client, "get_service_specs", headers=TOKEN))["result"]
    assert private["methods"]["reveal"] == "Show the secret."


async def test_a_service_may_define_its_own_get_service_specs(
    aiohttp_client: AiohttpClient,
) -> None:
    """A service exposing get_service_specs itself keeps its own method."""

    class Own(gemstone.MicroService):
        name = "own_specs"

        @gemstone.exposed_method()
        async def get_service_specs(self) -> str:
            return "mine"

    client = await aiohttp_client(Own().make_app())
    assert (await rpc(client, "get_service_specs"))["result"] == "mine"


async def test_openrpc_json_serves_the_same_document(aiohttp_client: AiohttpClient) -> None:
    """GET {endpoint}/openrpc.json is the document rpc.discover returns, with the same
    authentication rule; it is never cached by the way."""
    client = await aiohttp_client(Vault().make_app())
    for headers in ({}, TOKEN):
        response = await client.get("/api/openrpc.json", headers=headers)
        assert response.status == 200
        assert response.content_type == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        document = await response.json()
        assert document == (await rpc(client, "rpc.discover", headers=headers))["result"]
        assert ("reveal" in names(document)) == bool(headers)
    response = await client.post("/api/openrpc.json", json={})
    assert response.status == 405


async def test_docs_page_is_self_contained(aiohttp_client: AiohttpClient) -> None:
    """/docs is one HTML page: inline script and style under a nonce CSP, no external
    URL, the document embedded so that no text of it can close the script element."""
    client = await aiohttp_client(Vault().make_app())
    response = await client.get("/api/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert page.count(f'nonce="{nonce.group(1)}"') == 2  # the style and the script
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page
    assert "alert(1)" in page
    assert "</script><script>alert" not in page
    assert "<title>vault 1.4.0</title>" in page
    # Two requests get two nonces.
    again = await client.get("/api/docs")
    assert again.headers["Content-Security-Policy"] != policy


async def test_docs_page_embeds_private_methods_only_when_authenticated(
    aiohttp_client: AiohttpClient,
) -> None:
    """The page carries the document the caller may see."""
    client = await aiohttp_client(Vault().make_app())
    anonymous = await (await client.get("/api/docs")).text()
    admitted = await (await client.get("/api/docs", headers=TOKEN)).text()
    assert '"name":"reveal"' not in anonymous
    assert '"name":"reveal"' in admitted


async def test_paths_follow_the_endpoint(aiohttp_client: AiohttpClient) -> None:
    """With endpoint "/", the routes are /openrpc.json and /docs."""

    class Root(gemstone.MicroService):
        name = "root_endpoint"
        endpoint = "/"

        @gemstone.exposed_method()
        async def hello(self) -> str:
            return "hi"

    client = await aiohttp_client(Root().make_app())
    assert (await client.get("/openrpc.json")).status == 200
    assert (await client.get("/docs")).status == 200
    response = await client.post("/", json={"jsonrpc": "2.0", "method": "rpc.discover", "id": 1})
    assert "hello" in names((await response.json())["result"])


async def test_servers_give_the_real_url_of_a_listening_service() -> None:
    """Served on a free port, the document's server URL is the real one, and a plain
    HTTP client can fetch it there."""
    async with serving(Vault()) as service, aiohttp.ClientSession() as session:
        async with session.get(f"{service.accessible_at}/openrpc.json") as response:
            document = await response.json()
        assert document["servers"] == [{"name": "vault", "url": service.accessible_at}]
        assert service.port != 8000


async def test_placeholders_in_service_values_are_not_expanded(
    aiohttp_client: AiohttpClient,
) -> None:
    """A version that looks like a template placeholder is shown literally."""

    class Odd(gemstone.MicroService):
        name = "odd_version"
        version = "{{CONFIG}}<b>"

    client = await aiohttp_client(Odd().make_app())
    page = await (await client.get("/api/docs")).text()
    assert "<title>odd_version {{CONFIG}}&lt;b&gt;</title>" in page


async def test_concurrent_first_requests_generate_the_document_once(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls racing for a document not generated yet wait for one generation (run in a
    worker thread) and all get its result."""
    app = Vault().make_app()
    description = app[SELF_DESCRIPTION_KEY]
    built: list[bool] = []
    real_build = description._build

    def counting_build(include_private: bool) -> dict[str, Any]:
        built.append(include_private)
        return real_build(include_private)

    monkeypatch.setattr(description, "_build", counting_build)
    client = await aiohttp_client(app)
    batch = [{"jsonrpc": "2.0", "method": "rpc.discover", "id": i} for i in range(5)]
    posted, page = await asyncio.gather(
        client.post("/api", json=batch), client.get("/api/openrpc.json")
    )
    documents = [answer["result"] for answer in await posted.json()]
    assert len(documents) == 5
    assert all(document == documents[0] for document in documents)
    assert await page.json() == documents[0]
    assert built == [False]

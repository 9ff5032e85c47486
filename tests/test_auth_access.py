"""Private methods through a real aiohttp server: who is admitted, and what is logged."""

from __future__ import annotations

import asyncio
import logging
from types import MappingProxyType
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from tests.fixtures.auth import DENIED, call, post_rpc

TOKEN = "tok-8f2b1c"


class Vault(gemstone.MicroService):
    """Admits the token TOKEN in X-Api-Token (the default strategy)."""

    name = "vault"
    api_tokens = (TOKEN,)

    @gemstone.exposed_method(private=True)
    async def secret(self, x: int) -> int:
        return x * 2

    @gemstone.exposed_method()
    async def open(self) -> str:
        return "open"


class Unconfigured(gemstone.MicroService):
    """Has a private method and nothing that admits anyone."""

    name = "unconfigured"

    @gemstone.exposed_method(private=True)
    async def secret(self) -> str:
        return "leaked"


@pytest.mark.parametrize(
    ("headers", "params", "expected"),
    [
        pytest.param({}, [21], {"error": DENIED}, id="no-token"),
        pytest.param({"X-Api-Token": "nope"}, [21], {"error": DENIED}, id="wrong-token"),
        pytest.param({"X-Api-Token": TOKEN}, [21], {"result": 42}, id="right-token"),
        pytest.param({"X-Api-Token": "nope"}, ["x", 1, 2], {"error": DENIED}, id="wrong-both"),
        pytest.param({"x-api-token": TOKEN}, [1], {"result": 2}, id="header-case"),
        pytest.param({"X-Api-Token": TOKEN[:-1]}, [1], {"error": DENIED}, id="token-prefix"),
        pytest.param({"X-Api-Token": TOKEN + "0"}, [1], {"error": DENIED}, id="token-longer"),
    ],
)
async def test_token_matrix(
    aiohttp_client: AiohttpClient,
    headers: dict[str, str],
    params: list[Any],
    expected: dict[str, Any],
) -> None:
    """The default header strategy with api_tokens admits exactly the right token."""
    client = await aiohttp_client(Vault().make_app())
    status, body = await post_rpc(client, call("secret", params, id=7), headers=headers)
    assert status == 200
    assert body == {"jsonrpc": "2.0", "id": 7, **expected}


async def test_right_token_wrong_params_is_invalid_params(aiohttp_client: AiohttpClient) -> None:
    """Once admitted, bad params get -32602 as usual."""
    client = await aiohttp_client(Vault().make_app())
    _, body = await post_rpc(client, call("secret", ["x"]), headers={"X-Api-Token": TOKEN})
    assert body["error"]["code"] == -32602


async def test_public_method_needs_no_token(aiohttp_client: AiohttpClient) -> None:
    """Public methods answer anyone, with or without a token."""
    client = await aiohttp_client(Vault().make_app())
    assert (await post_rpc(client, call("open")))[1]["result"] == "open"
    wrong = await post_rpc(client, call("open"), headers={"X-Api-Token": "nope"})
    assert wrong[1]["result"] == "open"


async def test_unconfigured_service_denies_and_logs_once(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """With nothing that admits callers, every caller is denied; start-up says how to fix it once."""
    caplog.set_level(logging.INFO, logger="gemstone_aio")
    client = await aiohttp_client(Unconfigured().make_app())
    for headers in ({}, {"X-Api-Token": "anything"}, {"X-Api-Token": ""}):
        _, body = await post_rpc(client, call("secret"), headers=headers)
        assert body["error"] == DENIED
    hints = [r for r in caplog.records if "nothing admits callers" in r.getMessage()]
    assert len(hints) == 1
    assert hints[0].levelno == logging.WARNING
    assert "api_tokens" in hints[0].getMessage()
    assert "authenticate_request" in hints[0].getMessage()


async def test_configured_service_does_not_warn(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A service with tokens logs how it is guarded, not the fail-closed hint."""
    caplog.set_level(logging.INFO, logger="gemstone_aio")
    await aiohttp_client(Vault().make_app())
    messages = [r.getMessage() for r in caplog.records]
    assert not any("nothing admits" in m for m in messages)
    assert "private methods are guarded by API tokens found in: header X-Api-Token" in messages


async def test_failed_attempts_are_logged_without_the_token(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A denied attempt is logged with its reason and address; no token ever reaches a log."""
    caplog.set_level(logging.DEBUG)
    client = await aiohttp_client(Vault().make_app())
    await post_rpc(client, call("secret", [1]), headers={"X-Api-Token": "guess-123"})
    await post_rpc(client, call("secret", [1]))
    await post_rpc(client, call("secret", [1]), headers={"X-Api-Token": TOKEN})
    denials = [
        (r.levelno, r.getMessage()) for r in caplog.records if "access denied" in r.getMessage()
    ]
    assert denials == [
        (
            logging.WARNING,
            "access denied to 127.0.0.1: the API token in header X-Api-Token was rejected",
        ),
        (
            logging.INFO,
            "access denied to 127.0.0.1: no API token found (looked in: header X-Api-Token)",
        ),
    ]
    for record in caplog.records:
        text = record.getMessage() + str(record.args)
        assert "guess-123" not in text
        assert TOKEN not in text


async def test_token_mapping_gives_identity(aiohttp_client: AiohttpClient) -> None:
    """A mapping in api_tokens names the caller; a plain collection gives a TokenIdentity."""

    class Named(gemstone.MicroService):
        name = "named"
        api_tokens = MappingProxyType({"t-billing": "billing", "t-audit": "audit"})

        @gemstone.exposed_method(private=True, requires_handler_reference=True)
        async def whoami(self, handler: gemstone.RequestHandler) -> Any:
            return handler.identity

    client = await aiohttp_client(Named().make_app())
    _, body = await post_rpc(client, call("whoami"), headers={"X-Api-Token": "t-audit"})
    assert body["result"] == "audit"

    class Plain(gemstone.MicroService):
        name = "plain"
        api_tokens = frozenset({"t-1"})

        @gemstone.exposed_method(private=True, requires_handler_reference=True)
        async def whoami(self, handler: gemstone.RequestHandler) -> Any:
            assert handler.identity == gemstone.TokenIdentity("header X-Api-Token")
            return repr(handler.identity)

    client = await aiohttp_client(Plain().make_app())
    _, body = await post_rpc(client, call("whoami"), headers={"X-Api-Token": "t-1"})
    assert body["result"] == "TokenIdentity(source='header X-Api-Token')"


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        pytest.param("abc", "not a single string", id="single-string"),
        pytest.param(["ok", ""], "invalid token at position 1", id="empty-token"),
        pytest.param([b"bytes"], r"invalid token at position 0 \(a bytes", id="bytes-token"),
        pytest.param(42, "got int", id="not-a-collection"),
    ],
)
def test_bad_api_tokens_are_rejected_at_creation(tokens: Any, message: str) -> None:
    """A misconfigured api_tokens fails at construction with a message that names the problem."""

    class Bad(gemstone.MicroService):
        name = "bad"
        api_tokens = tokens

    with pytest.raises(gemstone.ServiceConfigurationError, match=message):
        Bad()


def test_bad_strategy_is_rejected_at_creation() -> None:
    """A validation strategy that is not a BaseValidationStrategy fails at construction."""

    class Bad(gemstone.MicroService):
        name = "bad"
        validation_strategies = ("X-Api-Token",)  # type: ignore[assignment]  # the mistake tested

    with pytest.raises(gemstone.ServiceConfigurationError, match=r"validation_strategies\[0\]"):
        Bad()


def test_strategies_are_copied_per_instance() -> None:
    """Changing one instance's strategies changes neither the class nor another instance."""
    first, second = Vault(), Vault()
    assert isinstance(first.validation_strategies, list)
    first.validation_strategies.append(gemstone.BasicCookieStrategy())
    assert len(second.validation_strategies) == 1
    assert len(Vault.validation_strategies) == 1
    assert gemstone.MicroService.validation_strategies[0].header == "X-Api-Token"  # type: ignore[attr-defined]


class Counting(gemstone.MicroService):
    """Counts authenticate_request calls; admits the header ``X-Who``."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.auth_calls = 0

    async def authenticate_request(self, request: web.Request) -> Any:
        self.auth_calls += 1
        await asyncio.sleep(0)  # let concurrent batch elements interleave here
        return request.headers.get("X-Who")

    @gemstone.exposed_method(private=True)
    async def secret(self, x: int) -> int:
        return x

    @gemstone.exposed_method()
    async def public(self, x: int) -> int:
        return -x

    @gemstone.exposed_method(private=True)
    async def whoami(self) -> Any:
        return gemstone.current_handler().identity


async def test_batch_authenticates_once(aiohttp_client: AiohttpClient) -> None:
    """A batch with private and public elements authenticates once, for all its elements."""
    service = Counting()
    client = await aiohttp_client(service.make_app())
    batch = [
        call("secret", [1], id=1),
        call("public", [2], id=2),
        call("secret", [3], id=3),
        call("whoami", id=4),
        call("secret", [5], id=...),
        call("public", [6], id=6),
    ]
    _, body = await post_rpc(client, batch, headers={"X-Who": "ada"})
    assert sorted(body, key=lambda r: r["id"]) == [
        {"jsonrpc": "2.0", "result": 1, "id": 1},
        {"jsonrpc": "2.0", "result": -2, "id": 2},
        {"jsonrpc": "2.0", "result": 3, "id": 3},
        {"jsonrpc": "2.0", "result": "ada", "id": 4},
        {"jsonrpc": "2.0", "result": -6, "id": 6},
    ]
    assert service.auth_calls == 1

    _, body = await post_rpc(client, batch)
    assert sorted(body, key=lambda r: r["id"]) == [
        {"jsonrpc": "2.0", "error": DENIED, "id": 1},
        {"jsonrpc": "2.0", "result": -2, "id": 2},
        {"jsonrpc": "2.0", "error": DENIED, "id": 3},
        {"jsonrpc": "2.0", "error": DENIED, "id": 4},
        {"jsonrpc": "2.0", "result": -6, "id": 6},
    ]
    assert service.auth_calls == 2  # once more: one per HTTP request


async def test_public_only_requests_do_not_authenticate(aiohttp_client: AiohttpClient) -> None:
    """Authentication runs only when a private method is called."""
    service = Counting()
    client = await aiohttp_client(service.make_app())
    batch = [call("public", [1], id=1), call("public", [2], id=2)]
    _, body = await post_rpc(client, batch, headers={"X-Who": "ada"})
    assert len(body) == 2
    assert service.auth_calls == 0


class SyncAuth(gemstone.MicroService):
    """A plain-def authenticate_request that returns an identity object."""

    name = "sync_auth"

    def authenticate_request(self, request: web.Request) -> Any:
        if request.headers.get("Authorization") == "Key k1":
            return {"user": "grace", "roles": ["admin"]}
        return None

    @gemstone.exposed_method(private=True, requires_handler_reference=True)
    def profile(self, handler: gemstone.RequestHandler, field: str) -> Any:
        # A blocking method: it runs in the pool, and both accessors still work there.
        assert gemstone.current_handler() is handler
        assert handler.current_user is handler.identity
        return handler.identity[field]


async def test_sync_authenticate_request_identity(aiohttp_client: AiohttpClient) -> None:
    """A sync authenticate_request admits callers and its identity reaches the method."""
    client = await aiohttp_client(SyncAuth().make_app())
    ok = await post_rpc(client, call("profile", ["roles"]), headers={"Authorization": "Key k1"})
    assert ok[1]["result"] == ["admin"]
    bad = await post_rpc(client, call("profile", ["roles"]), headers={"Authorization": "Key k2"})
    assert bad[1]["error"] == DENIED


async def test_async_authenticate_request_identity(aiohttp_client: AiohttpClient) -> None:
    """An async authenticate_request works the same, and its identity is per request."""
    service = Counting()
    client = await aiohttp_client(service.make_app())
    for who in ("ada", "linus"):
        _, body = await post_rpc(client, call("whoami"), headers={"X-Who": who})
        assert body["result"] == who
    _, body = await post_rpc(client, call("whoami"), headers={"X-Who": ""})
    assert body["error"] == DENIED


async def test_authenticate_request_overrides_tokens(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An overridden authenticate_request decides alone; api_tokens are ignored unless it calls super()."""

    class Override(Vault):
        name = "override"

        def authenticate_request(self, request: web.Request) -> Any:
            return request.headers.get("X-Who")

    caplog.set_level(logging.INFO, logger="gemstone_aio")
    client = await aiohttp_client(Override().make_app())
    _, body = await post_rpc(client, call("secret", [1]), headers={"X-Api-Token": TOKEN})
    assert body["error"] == DENIED
    assert "authenticate_request refused the request" in caplog.text
    _, body = await post_rpc(client, call("secret", [1]), headers={"X-Who": "x"})
    assert body["result"] == 2


async def test_authenticate_request_can_combine_with_tokens(aiohttp_client: AiohttpClient) -> None:
    """Calling super().authenticate_request() adds the token rules to one's own."""

    class Both(Vault):
        name = "both"

        async def authenticate_request(self, request: web.Request) -> Any:
            if request.remote == "10.9.9.9":  # never the case here
                return "internal"
            return await super().authenticate_request(request)

    client = await aiohttp_client(Both().make_app())
    assert (await post_rpc(client, call("secret", [4]), headers={"X-Api-Token": TOKEN}))[1] == {
        "jsonrpc": "2.0",
        "result": 8,
        "id": 1,
    }
    assert (await post_rpc(client, call("secret", [4])))[1]["error"] == DENIED


async def test_authenticate_request_that_raises_denies(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in authenticate_request denies (fails closed) and is logged, not leaked."""

    class Broken(Unconfigured):
        name = "broken"

        def authenticate_request(self, request: web.Request) -> Any:
            raise RuntimeError("database down")

    client = await aiohttp_client(Broken().make_app())
    status, body = await post_rpc(client, call("secret"))
    assert status == 200
    assert body["error"] == DENIED
    assert "database down" not in str(body)
    assert "authenticate_request raised: access denied to 127.0.0.1" in caplog.text


def test_api_token_is_valid_override_warns_at_creation() -> None:
    """Overriding the deprecated api_token_is_valid warns once, when the service is created."""

    class Legacy(Unconfigured):
        name = "legacy"

        def api_token_is_valid(self, token: str) -> bool:
            return token == "legacy-token"

    with pytest.warns(DeprecationWarning, match=r"authenticate_request\(request\)") as caught:
        Legacy()
    assert len(caught) == 1
    assert caught[0].filename == __file__


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_api_token_is_valid_override_works(aiohttp_client: AiohttpClient, kind: str) -> None:
    """A sync or async api_token_is_valid decides on the token the strategies found."""
    seen: list[str] = []

    class LegacySync(Unconfigured):
        name = "legacy_sync"

        def api_token_is_valid(self, token: str) -> bool:
            seen.append(token)
            return gemstone.tokens_equal(token, "legacy-token")

    class LegacyAsync(Unconfigured):
        name = "legacy_async"

        async def api_token_is_valid(self, token: str) -> bool:
            seen.append(token)
            return gemstone.tokens_equal(token, "legacy-token")

    cls = LegacySync if kind == "sync" else LegacyAsync
    with pytest.warns(DeprecationWarning, match="api_token_is_valid"):
        service = cls()
    client = await aiohttp_client(service.make_app())
    ok = await post_rpc(client, call("secret"), headers={"X-Api-Token": "legacy-token"})
    assert ok[1]["result"] == "leaked"
    bad = await post_rpc(client, call("secret"), headers={"X-Api-Token": "other"})
    assert bad[1]["error"] == DENIED
    none = await post_rpc(client, call("secret"))
    assert none[1]["error"] == DENIED
    assert seen == ["legacy-token", "other"]  # never asked about a missing token


class Greeter(gemstone.MicroService):
    """A public method that greets known callers by name."""

    name = "greeter"
    api_tokens = MappingProxyType({"t-ada": "ada"})

    def __init__(self) -> None:
        super().__init__()
        self.auth_calls = 0

    async def authenticate_request(self, request: web.Request) -> Any:
        self.auth_calls += 1
        return await super().authenticate_request(request)

    @gemstone.exposed_method(requires_handler_reference=True)
    async def greet(self, handler: gemstone.RequestHandler) -> str:
        who = await handler.authenticate()
        again = await gemstone.current_handler().authenticate()
        assert again is who
        return f"hello {who or 'stranger'}"

    @gemstone.exposed_method(private=True)
    async def secret(self) -> str:
        return "s"


async def test_public_method_can_ask_who_calls(aiohttp_client: AiohttpClient) -> None:
    """handler.authenticate() gives a public method the identity, or None, checking once per request."""
    service = Greeter()
    client = await aiohttp_client(service.make_app())
    _, body = await post_rpc(client, call("greet"), headers={"X-Api-Token": "t-ada"})
    assert body["result"] == "hello ada"
    _, body = await post_rpc(client, call("greet"), headers={"X-Api-Token": "wrong"})
    assert body["result"] == "hello stranger"
    _, body = await post_rpc(client, call("greet"))
    assert body["result"] == "hello stranger"
    assert service.auth_calls == 3
    batch = [call("greet", id=1), call("secret", id=2), call("greet", id=3)]
    _, body = await post_rpc(client, batch, headers={"X-Api-Token": "t-ada"})
    assert [r["result"] for r in sorted(body, key=lambda r: r["id"])] == [
        "hello ada",
        "s",
        "hello ada",
    ]
    assert service.auth_calls == 4


async def test_self_description_hides_private_methods(aiohttp_client: AiohttpClient) -> None:
    """rpc.discover and GET openrpc.json list private methods only to admitted callers."""
    client = await aiohttp_client(Vault().make_app())

    async def listed(headers: dict[str, str]) -> tuple[set[str], set[str]]:
        _, body = await post_rpc(client, call("rpc.discover"), headers=headers)
        over_rpc = {m["name"] for m in body["result"]["methods"]}
        response = await client.get("/api/openrpc.json", headers=headers)
        assert response.status == 200
        over_get = {m["name"] for m in (await response.json())["methods"]}
        return over_rpc, over_get

    anonymous = await listed({})
    assert "secret" not in anonymous[0] | anonymous[1]
    assert "open" in anonymous[0] & anonymous[1]
    wrong = await listed({"X-Api-Token": "nope"})
    assert "secret" not in wrong[0] | wrong[1]
    admitted = await listed({"X-Api-Token": TOKEN})
    assert "secret" in admitted[0] & admitted[1]


async def test_self_description_when_authenticate_request_raises(
    aiohttp_client: AiohttpClient,
) -> None:
    """A failing authenticate_request hides private methods from the docs page; it does not break it."""

    class Broken(Vault):
        name = "broken_docs"

        def authenticate_request(self, request: web.Request) -> Any:
            raise RuntimeError("session store down")

    client = await aiohttp_client(Broken().make_app())
    response = await client.get("/api/openrpc.json")
    assert response.status == 200
    assert "secret" not in {m["name"] for m in (await response.json())["methods"]}
    page = await client.get("/api/docs")
    assert page.status == 200
    assert "session store down" not in await page.text()


async def test_anonymous_self_description_logs_no_denial(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading the description anonymously is no denied call: nothing is logged. A private
    call denied in the same request (a batch, in either order) is still logged, once."""
    caplog.set_level(logging.DEBUG)
    client = await aiohttp_client(Vault().make_app())
    for method in ("rpc.discover", "get_service_specs"):
        status, _ = await post_rpc(client, call(method))
        assert status == 200
    for path in ("/api/openrpc.json", "/api/docs"):
        assert (await client.get(path)).status == 200

    def denials() -> list[str]:
        return [r.getMessage() for r in caplog.records if "access denied" in r.getMessage()]

    assert denials() == []
    for first, second in (("rpc.discover", "secret"), ("secret", "rpc.discover")):
        _, body = await post_rpc(client, [call(first, id=1), call(second, id=2)])
        errors = [answer["id"] for answer in body if "error" in answer]
        assert errors == [2 if second == "secret" else 1]
    assert (
        denials()
        == ["access denied to 127.0.0.1: no API token found (looked in: header X-Api-Token)"] * 2
    )


class PublicOnly(gemstone.MicroService):
    """Counts authenticate_request calls; has no private method."""

    name = "public_only"

    def __init__(self) -> None:
        super().__init__()
        self.auth_calls = 0

    def authenticate_request(self, request: web.Request) -> Any:
        self.auth_calls += 1
        return "someone"

    @gemstone.exposed_method()
    async def public(self, x: int) -> int:
        return -x


async def test_a_service_without_private_methods_never_authenticates_readers(
    aiohttp_client: AiohttpClient,
) -> None:
    """With nothing private to show, describing the service runs no access check."""
    service = PublicOnly()
    client = await aiohttp_client(service.make_app())
    _, body = await post_rpc(client, call("rpc.discover"))
    assert "public" in {m["name"] for m in body["result"]["methods"]}
    assert (await client.get("/api/openrpc.json")).status == 200
    assert service.auth_calls == 0

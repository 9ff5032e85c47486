"""Validation strategies through a real aiohttp server, and the token helpers."""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.auth import find_token
from tests.fixtures.auth import DENIED, call, post_rpc

TOKEN = "tok-3c9d"


def guarded(*strategies: gemstone.BaseValidationStrategy) -> gemstone.MicroService:
    """A service whose private ``whoami`` admits TOKEN found by ``strategies``."""

    class Guarded(gemstone.MicroService):
        name = "guarded"
        api_tokens = MappingProxyType({TOKEN: "member"})
        validation_strategies = strategies

        @gemstone.exposed_method(private=True)
        async def whoami(self) -> Any:
            return gemstone.current_handler().identity

    return Guarded()


async def outcome(client: Any, headers: dict[str, str]) -> Any:
    """``"member"`` when admitted, the error object when denied."""
    _, body = await post_rpc(client, call("whoami"), headers=headers)
    return body.get("result", body.get("error"))


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        pytest.param("Bearer {}", f"Bearer {TOKEN}", "member", id="bearer"),
        pytest.param("Bearer {}", f"bearer {TOKEN}", "member", id="scheme-any-case"),
        pytest.param("Bearer {}", f"  Bearer   {TOKEN}  ", "member", id="spaces"),
        pytest.param("Bearer {}", TOKEN, DENIED, id="missing-scheme"),
        pytest.param("Bearer {}", f"Basic {TOKEN}", DENIED, id="other-scheme"),
        pytest.param("Bearer {}", "Bearer ", DENIED, id="empty-token"),
        pytest.param("Token {};v1", f"Token {TOKEN};v1", "member", id="suffix"),
        pytest.param("Token {};v1", f"Token {TOKEN};v2", DENIED, id="wrong-suffix"),
        pytest.param(None, TOKEN, "member", id="no-template"),
        pytest.param(None, f"Bearer {TOKEN}", DENIED, id="no-template-whole-value"),
    ],
)
async def test_header_template(
    aiohttp_client: AiohttpClient, template: str | None, value: str, expected: Any
) -> None:
    """A format-string template extracts the token from a formatted header."""
    strategy = gemstone.HeaderValidationStrategy(header="Authorization", template=template)
    client = await aiohttp_client(guarded(strategy).make_app())
    assert await outcome(client, {"Authorization": value}) == expected


async def test_callable_template_gemstone_09(aiohttp_client: AiohttpClient) -> None:
    """A callable template (gemstone 0.9) maps the raw value; header_name= is accepted too."""
    strategy = gemstone.HeaderValidationStrategy(
        header_name="X-Auth", template=lambda raw: raw.split(":", 1)[1]
    )
    assert strategy.header == "X-Auth"
    client = await aiohttp_client(guarded(strategy).make_app())
    assert await outcome(client, {"X-Auth": f"v1:{TOKEN}"}) == "member"
    assert await outcome(client, {"X-Auth": f"v1:{TOKEN}x"}) == DENIED
    assert await outcome(client, {}) == DENIED  # the template is never given None


async def test_callable_template_that_raises_denies(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A template that fails on a malformed value denies and logs why, without the value."""
    strategy = gemstone.HeaderValidationStrategy(
        header="X-Auth", template=lambda raw: raw.split(":", 1)[1]
    )
    client = await aiohttp_client(guarded(strategy).make_app())
    assert await outcome(client, {"X-Auth": "malformed-secret"}) == DENIED
    assert "the token template of header X-Auth raised IndexError" in caplog.text
    assert "malformed-secret" not in caplog.text


@pytest.mark.parametrize("template", ["Bearer", "{} and {}", 42])
def test_invalid_template_is_rejected(template: Any) -> None:
    """A template that is neither one-'{}' text nor callable fails at once, naming it."""
    with pytest.raises(gemstone.ServiceConfigurationError, match=repr(template)):
        gemstone.HeaderValidationStrategy(template=template)
    with pytest.raises(gemstone.ServiceConfigurationError, match=repr(template)):
        gemstone.BasicCookieStrategy(template=template)


def test_invalid_names_are_rejected() -> None:
    """Empty header and cookie names fail at once."""
    with pytest.raises(gemstone.ServiceConfigurationError, match="invalid header name: ''"):
        gemstone.HeaderValidationStrategy(header="")
    with pytest.raises(gemstone.ServiceConfigurationError, match="invalid cookie name: ''"):
        gemstone.BasicCookieStrategy(cookie_name="")


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        pytest.param(f"AuthToken={TOKEN}", "member", id="right"),
        pytest.param("AuthToken=nope", DENIED, id="wrong"),
        pytest.param(f"authtoken={TOKEN}", DENIED, id="name-is-case-sensitive"),
        pytest.param(f"other=1; AuthToken={TOKEN}", "member", id="among-others"),
        pytest.param("", DENIED, id="none"),
    ],
)
async def test_cookie_strategy(aiohttp_client: AiohttpClient, cookie: str, expected: Any) -> None:
    """BasicCookieStrategy reads the token from the AuthToken cookie."""
    client = await aiohttp_client(guarded(gemstone.BasicCookieStrategy()).make_app())
    headers = {"Cookie": cookie} if cookie else {}
    assert await outcome(client, headers) == expected


async def test_cookie_strategy_with_template(aiohttp_client: AiohttpClient) -> None:
    """Cookie strategies take templates too."""
    strategy = gemstone.BasicCookieStrategy("session", template="v2.{}")
    client = await aiohttp_client(guarded(strategy).make_app())
    assert await outcome(client, {"Cookie": f"session=v2.{TOKEN}"}) == "member"
    assert await outcome(client, {"Cookie": f"session=v1.{TOKEN}"}) == DENIED


async def test_strategy_order(aiohttp_client: AiohttpClient) -> None:
    """Strategies are tried in order and the first token found is the one judged."""
    header = gemstone.HeaderValidationStrategy()
    cookie = gemstone.BasicCookieStrategy()
    both_wrong_header = {"X-Api-Token": "nope", "Cookie": f"AuthToken={TOKEN}"}
    both_wrong_cookie = {"X-Api-Token": TOKEN, "Cookie": "AuthToken=nope"}

    header_first = await aiohttp_client(guarded(header, cookie).make_app())
    assert await outcome(header_first, both_wrong_header) == DENIED
    assert await outcome(header_first, both_wrong_cookie) == "member"
    # No header (or an empty one): the next strategy is asked.
    assert await outcome(header_first, {"Cookie": f"AuthToken={TOKEN}"}) == "member"
    assert await outcome(header_first, {"X-Api-Token": "", "Cookie": f"AuthToken={TOKEN}"}) == (
        "member"
    )

    cookie_first = await aiohttp_client(guarded(cookie, header).make_app())
    assert await outcome(cookie_first, both_wrong_header) == "member"
    assert await outcome(cookie_first, both_wrong_cookie) == DENIED


class QueryStringStrategy(gemstone.BaseValidationStrategy):
    """A custom, async strategy: the token is the ``token`` query parameter."""

    def __init__(self) -> None:
        self.calls = 0

    async def extract_api_token(self, request: web.Request) -> str | None:
        self.calls += 1
        return request.query.get("token")

    def describe(self) -> str:
        return "query string"


async def test_custom_strategy(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A BaseValidationStrategy subclass (async here) plugs in like the built-in ones."""
    strategy = QueryStringStrategy()
    service = guarded(strategy)
    client = await aiohttp_client(service.make_app())
    _, body = await post_rpc(client, call("whoami"), path=f"/api?token={TOKEN}")
    assert body["result"] == "member"
    _, body = await post_rpc(client, call("whoami"), path="/api?token=nope")
    assert body["error"] == DENIED
    assert strategy.calls == 2
    assert "the API token in query string was rejected" in caplog.text


def test_base_strategy_is_abstract() -> None:
    """The base class cannot be used without extract_api_token."""
    with pytest.raises(TypeError, match="extract_api_token"):
        gemstone.BaseValidationStrategy()  # type: ignore[abstract]


def test_strategies_on_a_mocked_request() -> None:
    """Strategies are plain objects: they can be unit-tested on a mocked request."""
    request = make_mocked_request(
        "POST",
        "/api",
        headers={"Authorization": "Bearer abc", "Cookie": "AuthToken=def"},
    )
    assert gemstone.HeaderValidationStrategy("Authorization", "Bearer {}").extract_api_token(
        request
    ) == ("abc")
    assert gemstone.BasicCookieStrategy().extract_api_token(request) == "def"
    assert gemstone.HeaderValidationStrategy().extract_api_token(request) is None
    assert repr(gemstone.HeaderValidationStrategy()) == (
        "HeaderValidationStrategy(header='X-Api-Token', template=None)"
    )


@pytest.mark.parametrize(
    ("given", "expected", "equal"),
    [
        ("abc", "abc", True),
        ("abc", "abd", False),
        ("abc", "abcd", False),
        ("", "", True),
        ("clé-ünïcode", "clé-ünïcode", True),
        ("clé-ünïcode", "cle-unicode", False),
        (b"raw", "raw", True),
    ],
)
def test_tokens_equal(given: str | bytes, expected: str, equal: bool) -> None:
    """tokens_equal compares any text (not only ASCII) and bytes."""
    assert gemstone.tokens_equal(given, expected) is equal


def test_find_token() -> None:
    """find_token reports a match and, for a mapping, its identity."""
    assert find_token("b", ["a", "b"]) == (True, None)
    assert find_token("c", ["a", "b"]) == (False, None)
    assert find_token("b", {"a": "alice", "b": "bob"}) == (True, "bob")
    assert find_token("b", ()) == (False, None)


def test_strategy_log_names_no_token(caplog: pytest.LogCaptureFixture) -> None:
    """Strategies describe themselves by where they look, never by what they found."""
    caplog.set_level(logging.DEBUG)
    strategy = gemstone.HeaderValidationStrategy("X-Key", template=lambda raw: raw[99])
    request = make_mocked_request("POST", "/api", headers={"X-Key": "short-secret"})
    assert strategy.extract_api_token(request) is None
    assert "header X-Key" in caplog.text
    assert "short-secret" not in caplog.text

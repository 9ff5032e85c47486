"""Ways to authenticate callers of private methods, one service each.

- ``BearerService``: tokens in ``Authorization: Bearer <token>`` or in a cookie.
- ``TeamService``: ``authenticate_request`` decides from the whole request and returns
  an identity the methods read.
- ``QueryTokenService``: a custom validation strategy.
- ``LoginService``: a method that sets a cookie on the HTTP response.
- ``fetch_report``: calling a private method with the client.

Each is tested by ``tests/test_examples_access_strategies.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import MappingProxyType

from aiohttp import web

import gemstone_aio as gemstone


# --8<-- [start:bearer]
class BearerService(gemstone.MicroService):
    name = "reports"
    validation_strategies = (
        gemstone.HeaderValidationStrategy("Authorization", template="Bearer {}"),
        gemstone.BasicCookieStrategy("AuthToken"),
    )

    def __init__(self) -> None:
        super().__init__()
        # Comma-separated tokens from the environment; unset means nobody gets in.
        self.api_tokens = frozenset(filter(None, os.environ.get("REPORTS_TOKENS", "").split(",")))

    @gemstone.exposed_method(private=True)
    async def monthly_report(self, month: int) -> str:
        return f"report for month {month}"


# --8<-- [end:bearer]


# --8<-- [start:identity]
@dataclass(frozen=True)
class User:
    name: str
    team: str


USERS = {"key-ada": User("ada", "core"), "key-bob": User("bob", "ops")}


class TeamService(gemstone.MicroService):
    name = "teams"

    async def authenticate_request(self, request: web.Request) -> User | None:
        # Any lookup fits here: a database, a session store, a JWT check...
        return USERS.get(request.headers.get("X-Key", ""))

    @gemstone.exposed_method(private=True)
    async def my_team(self) -> str:
        user: User = gemstone.current_handler().identity
        return user.team

    @gemstone.exposed_method(private=True, requires_handler_reference=True)
    def greet(self, handler: gemstone.RequestHandler) -> str:
        return f"hello {handler.identity.name}"


# --8<-- [end:identity]


# --8<-- [start:custom]
class QueryStringStrategy(gemstone.BaseValidationStrategy):
    """Finds the token in the ``?token=`` query parameter."""

    def extract_api_token(self, request: web.Request) -> str | None:
        return request.query.get("token")

    def describe(self) -> str:
        return "query parameter token"


class QueryTokenService(gemstone.MicroService):
    name = "query_token"
    validation_strategies = (QueryStringStrategy(),)
    api_tokens = MappingProxyType({"q-token": "robot"})

    @gemstone.exposed_method(private=True)
    async def ping(self) -> str:
        return f"pong, {gemstone.current_handler().identity}"


# --8<-- [end:custom]


# --8<-- [start:cookie]
class LoginService(gemstone.MicroService):
    name = "login"
    validation_strategies = (gemstone.BasicCookieStrategy("AuthToken"),)
    api_tokens = MappingProxyType({"session-ada": "ada"})

    @gemstone.exposed_method(requires_handler_reference=True)
    async def login(self, handler: gemstone.RequestHandler, password: str) -> bool:
        if not gemstone.tokens_equal(password, "correct horse"):
            return False
        handler.set_cookie("AuthToken", "session-ada", httponly=True, samesite="Strict")
        return True

    @gemstone.exposed_method(private=True)
    async def whoami(self) -> str:
        return str(gemstone.current_handler().identity)


# --8<-- [end:cookie]


# --8<-- [start:client]
async def fetch_report(url: str, token: str, month: int) -> str:
    async with gemstone.RemoteService(
        url, token=token, token_header="Authorization", token_template="Bearer {}"
    ) as reports:
        result: str = await reports.call("monthly_report", month)
        return result


# --8<-- [end:client]

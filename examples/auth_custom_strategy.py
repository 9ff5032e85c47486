"""A custom validation strategy: the token is the ``?token=`` query parameter."""

from __future__ import annotations

from types import MappingProxyType

from aiohttp import web

import gemstone_aio as gemstone


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


if __name__ == "__main__":
    QueryTokenService().start()

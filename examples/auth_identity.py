"""``authenticate_request`` decides from the whole request and returns an identity."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

import gemstone_aio as gemstone


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


if __name__ == "__main__":
    TeamService().start()

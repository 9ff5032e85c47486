"""pjrpc 2 on aiohttp, with its pydantic validator: the peer closest to gemstone-aio."""

import sys

import pydantic
from aiohttp import web
from pjrpc.server import MethodRegistry
from pjrpc.server.integration import aiohttp as integration
from pjrpc.server.validators import pydantic as validators


class User(pydantic.BaseModel):
    name: str
    age: int


registry = MethodRegistry(validator_factory=validators.PydanticValidatorFactory())


@registry.add(name="say_hello")
async def say_hello(name: str) -> str:
    return "hello " + name


@registry.add(name="create_user")
async def create_user(user: User) -> str:
    return user.name


app = integration.Application("/api")
app.add_methods(registry)
web.run_app(app.http_app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)

"""jsonrpcserver 5 inside an aiohttp handler (its documented aiohttp integration)."""

import sys

from aiohttp import web
from jsonrpcserver import Result, Success, async_dispatch, method


@method
async def say_hello(name: str) -> Result:
    return Success("hello " + name)


@method
async def create_user(user: dict) -> Result:
    return Success(user["name"])


async def handle(request: web.Request) -> web.Response:
    return web.Response(
        text=await async_dispatch(await request.text()), content_type="application/json"
    )


app = web.Application()
app.router.add_post("/api", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)

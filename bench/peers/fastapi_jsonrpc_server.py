"""fastapi-jsonrpc served by uvicorn."""

import sys

import fastapi_jsonrpc as jsonrpc
import pydantic
import uvicorn
from fastapi import Body


class User(pydantic.BaseModel):
    name: str
    age: int


app = jsonrpc.API()
api = jsonrpc.Entrypoint("/api")


@api.method()
async def say_hello(name: str = Body(...)) -> str:
    return "hello " + name


@api.method()
def say_hello_blocking(name: str = Body(...)) -> str:
    return "hello " + name


@api.method()
async def create_user(user: User = Body(...)) -> str:
    return user.name


app.bind_entrypoint(api)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)

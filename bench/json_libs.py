"""How the JSON library was chosen: parse and serialise request-sized documents.

    python bench/json_libs.py

Also checks what matters besides speed: integers beyond 64 bits (JSON-RPC ids), deep
nesting, and NaN (not JSON).
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from typing import Any

import pydantic_core

BODY = b'{"jsonrpc":"2.0","method":"say_hello","params":{"name":"world"},"id":1}'
REPLY = {"jsonrpc": "2.0", "result": "hello world", "id": 1}


def candidates() -> list[tuple[str, Callable[[bytes], Any], Callable[[Any], bytes]]]:
    found: list[tuple[str, Callable[[bytes], Any], Callable[[Any], bytes]]] = [
        ("stdlib json", json.loads, lambda v: json.dumps(v).encode()),
        ("pydantic-core", pydantic_core.from_json, pydantic_core.to_json),
    ]
    try:
        import orjson

        found.append(("orjson", orjson.loads, orjson.dumps))
    except ImportError:
        pass
    return found


def main() -> None:
    print(f"{'library':14} {'loads us':>9} {'dumps us':>9}  big ints  deep nesting")
    for name, loads, dumps in candidates():
        n = 100_000
        load_us = (
            timeit.timeit("loads(BODY)", globals={"loads": loads, "BODY": BODY}, number=n) / n * 1e6
        )
        dump_us = (
            timeit.timeit("dumps(REPLY)", globals={"dumps": dumps, "REPLY": REPLY}, number=n)
            / n
            * 1e6
        )
        try:
            big = loads(dumps({"id": 2**80}))["id"] == 2**80
        except Exception:
            big = False
        try:
            loads(b"[" * 100_000 + b"]" * 100_000)
            deep = "accepted"
        except RecursionError:
            deep = "RecursionError"
        except Exception as exc:
            deep = f"refused ({type(exc).__name__})"
        print(f"{name:14} {load_us:9.2f} {dump_us:9.2f}  {big!s:8}  {deep}")


if __name__ == "__main__":
    main()

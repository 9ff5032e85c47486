"""A service with a public and a private method.

Run it with ``python examples/private_methods.py``. Anyone may call ``status``; the
private ``balance`` needs the token in the ``X-Api-Token`` header::

    curl -X POST -H "Content-Type: application/json" -H "X-Api-Token: s3cr3t-teller-token" \
        -d '{"jsonrpc": "2.0", "method": "balance", "params": {"account": "alice"}, "id": 1}' \
        http://127.0.0.1:8000/api

Without the header (or with another token) the answer is
``{"jsonrpc": "2.0", "error": {"code": -32001, "message": "Access denied"}, "id": 1}``.
Real services read their tokens from configuration or the environment, never the code.
"""

from __future__ import annotations

from types import MappingProxyType

import gemstone_aio as gemstone

BALANCES = {"alice": 120, "bob": 7}


class BankService(gemstone.MicroService):
    name = "bank"
    port = 8000
    # token -> the identity private methods see as handler.identity (read-only mapping)
    api_tokens = MappingProxyType({"s3cr3t-teller-token": "teller"})

    @gemstone.exposed_method()
    async def status(self) -> str:
        return "open"

    @gemstone.exposed_method(private=True)
    async def balance(self, account: str) -> dict[str, object]:
        caller = gemstone.current_handler().identity
        return {"account": account, "balance": BALANCES[account], "asked_by": caller}


if __name__ == "__main__":
    BankService().start()

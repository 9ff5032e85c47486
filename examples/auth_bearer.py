"""Tokens in ``Authorization: Bearer <token>`` or in the ``AuthToken`` cookie.

The accepted tokens come from the environment (``REPORTS_TOKENS=tok1,tok2``); unset, nobody
gets in. Call it with::

    curl -X POST -H "Content-Type: application/json" -H "Authorization: Bearer tok1" \
        -d '{"jsonrpc": "2.0", "method": "monthly_report", "params": [3], "id": 1}' \
        http://127.0.0.1:8000/api
"""

from __future__ import annotations

import os

import gemstone_aio as gemstone


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


if __name__ == "__main__":
    BearerService().start()

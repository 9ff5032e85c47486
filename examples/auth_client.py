"""Calling a private method with the client, the token in a Bearer header."""

from __future__ import annotations

import gemstone_aio as gemstone


async def fetch_report(url: str, token: str, month: int) -> str:
    async with gemstone.RemoteService(
        url, token=token, token_header="Authorization", token_template="Bearer {}"
    ) as reports:
        result: str = await reports.call("monthly_report", month)
        return result

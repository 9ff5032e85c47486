"""The events part of ``gemstone describe``: read from the service's AsyncAPI document.

A service with events links the document from its OpenRPC one (``x-asyncapi``); it is
fetched at ``{URL}/asyncapi.json`` beside the endpoint the command was given, with the
same headers, so a service reached through a proxy is described as it is reached.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ._output import stdout

__all__ = ["fetch_asyncapi", "print_events"]


async def fetch_asyncapi(svc: Any, url: str, openrpc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The AsyncAPI document of the service at ``url``, or ``None`` (no events, or none served).

    The methods are worth listing even when the events cannot be: a failure to fetch the
    document is a warning on stderr, not an error.
    """
    import aiohttp

    if "x-asyncapi" not in openrpc:
        return None
    where = url.rstrip("/") + "/asyncapi.json"
    try:
        async with (
            aiohttp.ClientSession(cookies=svc.cookies or None) as session,
            session.get(
                where, headers=svc.headers, timeout=aiohttp.ClientTimeout(total=svc.timeout)
            ) as response,
        ):
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            document = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        sys.stderr.write(f"warning: events not listed: cannot fetch {where}: {exc}\n")
        return None
    return document if isinstance(document, dict) else None


def _resolve(document: Mapping[str, Any], ref: Any) -> Any:
    node: Any = document
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return None
    for part in ref[2:].split("/"):
        node = (
            node.get(part.replace("~1", "/").replace("~0", "~"))
            if isinstance(node, Mapping)
            else None
        )
    if isinstance(node, Mapping) and "$ref" in node:
        return _resolve(document, node["$ref"])
    return node


def _event_rows(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    operations = document.get("operations")
    for op in operations.values() if isinstance(operations, Mapping) else ():
        if not isinstance(op, Mapping) or not isinstance(op.get("x-gemstone-event"), str):
            continue
        delivery = op.get("x-gemstone-delivery")
        row = events.setdefault(
            op["x-gemstone-event"], {"emits": [], "handles": False, "message": None}
        )
        if delivery == "dead-letter":
            continue
        if op.get("action") == "send":
            row["emits"].append(str(delivery))
        else:
            row["handles"] = True
        messages = op.get("messages")
        if row["message"] is None and isinstance(messages, list) and messages:
            row["message"] = _resolve(document, messages[0].get("$ref"))
    return dict(sorted(events.items()))


def print_events(document: Mapping[str, Any]) -> None:
    """Print one line per event (name, payload type, emits/handles), then its description."""
    from rich.text import Text

    from ._discover import schema_text

    rows = _event_rows(document)
    if not rows:
        return
    console = stdout()
    console.print()
    console.print(Text("events", style="bold"))
    for name, row in rows.items():
        message = row["message"] if isinstance(row["message"], Mapping) else {}
        if message.get("x-untyped"):
            payload = "any (untyped)"
        else:
            payload = schema_text(message.get("payload"), document)
        roles = [f"emits {mode}" for mode in row["emits"]]
        if row["handles"]:
            roles.append("handles")
        console.print()
        console.print(Text(f"{name}: {payload} — {', '.join(roles)}", style="cyan"))
        for line in str(message.get("description") or "").strip().splitlines():
            console.print(Text("    " + line))

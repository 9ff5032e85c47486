"""The docs page in a real headless Chromium, driven over the DevTools protocol.

The page is served by a real listening service; Chromium loads it, runs its script,
and the tests read the rendered DOM, fill the try-it form, click, and read the answer
of the real call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from examples.self_description import PizzaService

from gemstone_aio.testing import serving
from tests.fixtures.openrpc import Browser


class Page:
    """One browser tab, attached through a flat DevTools session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.session_id: str | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                self.events.append(data)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("DevTools connection closed"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if self.session_id is not None and not method.startswith("Target."):
            message["sessionId"] = self.session_id
        await self._ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 20)
        if "error" in reply:
            raise AssertionError(f"{method} failed: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, condition: str, timeout: float = 15) -> Any:
        """Resolve with the value of the JS ``condition`` once it is truthy."""
        return await self.evaluate(
            f"""new Promise((resolve, reject) => {{
                const deadline = Date.now() + {int(timeout * 1000)};
                (function check() {{
                    let value;
                    try {{ value = ({condition}); }} catch (err) {{ value = undefined; }}
                    if (value) resolve(value);
                    else if (Date.now() > deadline) reject(new Error("timed out: " + {json.dumps(condition)}));
                    else requestAnimationFrame(check);
                }})();
            }})"""
        )

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@pytest.fixture
async def page(chromium: Browser) -> AsyncIterator[Page]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(chromium.websocket_url, max_msg_size=0) as ws,
    ):
        tab = Page(ws)
        target = await tab.send("Target.createTarget", url="about:blank")
        attached = await tab.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        tab.session_id = attached["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            await tab.send(f"{domain}.enable")
        try:
            yield tab
        finally:
            await tab.send("Target.closeTarget", targetId=target["targetId"])
            await tab.close()


def _console_problems(events: list[dict[str, Any]]) -> list[Any]:
    problems: list[Any] = []
    for event in events:
        if event["method"] == "Runtime.exceptionThrown":
            problems.append(event["params"]["exceptionDetails"])
        elif event["method"] == "Log.entryAdded" and event["params"]["entry"]["level"] == "error":
            problems.append(event["params"]["entry"])
        elif event["method"] == "Runtime.consoleAPICalled" and event["params"]["type"] == "error":
            problems.append(event["params"]["args"])
    return problems


SECTIONS = (
    "[...document.querySelectorAll('section.method[data-method]')].map(s => s.dataset.method)"
)


async def _submit_and_read(page: Page, method: str) -> tuple[int, dict[str, Any]]:
    form = f"document.querySelector('form.try[data-method=\"{method}\"]')"
    await page.evaluate(f"{form}.querySelector('button[type=submit]').click()")
    text = await page.wait_for(
        f"{form}.querySelector('pre.response[data-state=done]')?.textContent"
    )
    status_line, _, body = text.partition("\n")
    return int(status_line.removeprefix("HTTP ")), json.loads(body)


async def test_the_page_lists_the_methods_and_calls_them_for_real(page: Page) -> None:
    """The rendered page shows every public method with its params and types, the try-it
    form performs a real JSON-RPC call, and nothing is loaded from anywhere else."""
    async with serving(PizzaService()) as service:
        docs_url = f"{service.accessible_at}/docs"
        await page.send("Page.navigate", url=docs_url)
        await page.wait_for("document.body && document.body.dataset.rendered")

        assert await page.evaluate(SECTIONS) == [
            "order",
            "menu",
            "price",
            "rpc.discover",
            "get_service_specs",
        ]
        assert await page.evaluate("document.getElementById('title').textContent") == ("pizza2.1.0")
        rows = await page.evaluate(
            """[...document.querySelectorAll('#method-order table.params tbody tr')]
                .map(tr => [...tr.children].map(td => td.textContent))"""
        )
        assert rows == [
            ["pizzas", "list[Pizza]", "yes", "", "What to bake, at least one."],
            ["note", "str | None", "no", "null", "A word for the kitchen."],
        ]
        assert await page.evaluate(
            "document.querySelector('#method-menu .result-type').textContent"
        ) == ("list[Pizza]")
        assert await page.evaluate(
            "document.querySelector('#method-price .badge.deprecated') !== null"
        )
        errors = await page.evaluate(
            "[...document.querySelectorAll('#method-order ul.errors li')].map(li => li.textContent)"
        )
        assert errors == ["-32602 Invalid params", "-32010 Out of stock data: OutOfStockData"]

        # The order form comes prefilled from the method's declared example.
        status, answer = await _submit_and_read(page, "order")
        assert status == 200
        assert answer["result"]["id"] == 1
        assert answer["result"]["pizzas"][0]["name"] == "margherita"
        assert [order.id for order in service.orders] == [1]

        # Plain text in a string field is sent as a string; a by-name method gets an object.
        await page.evaluate(
            """(() => { const f = document.querySelector('form.try[data-method="price"]');
                f.querySelector('textarea[name=name]').value = 'margherita';
                f.querySelector('textarea[name=size]').value = 'large'; })()"""
        )
        status, answer = await _submit_and_read(page, "price")
        assert (status, answer["result"]) == (200, 7.5)

        # An error answer is shown as such.
        await page.evaluate(
            """document.querySelector('form.try[data-method="menu"] textarea[name=limit]')
                .value = '"many"'"""
        )
        status, answer = await _submit_and_read(page, "menu")
        assert answer["error"]["code"] == -32602
        assert await page.evaluate(
            "document.querySelector('form.try[data-method=\"menu\"] pre.response')"
            ".classList.contains('error')"
        )

        requested = [
            event["params"]["request"]["url"]
            for event in page.events
            if event["method"] == "Network.requestWillBeSent"
        ]
        assert service.accessible_at is not None
        base = service.accessible_at.removesuffix(service.endpoint)
        assert requested, "no request was recorded"
        assert all(url.startswith(base) for url in requested), requested
        assert _console_problems(page.events) == []


async def test_credentials_typed_in_the_page_reveal_and_call_private_methods(page: Page) -> None:
    """With the API token in the page's credentials form, the private method appears and
    the page's call of it is admitted."""
    async with serving(PizzaService()) as service:
        await page.send("Page.navigate", url=f"{service.accessible_at}/docs")
        await page.wait_for("document.body && document.body.dataset.rendered")
        assert "revenue" not in await page.evaluate(SECTIONS)

        await page.evaluate(
            """(() => { document.getElementById('auth-name').value = 'X-Api-Token';
                document.getElementById('auth-value').value = 'let-me-in';
                document.querySelector('#auth button[type=submit]').click(); })()"""
        )
        await page.wait_for("document.getElementById('method-revenue')")
        assert await page.evaluate(
            "document.querySelector('#method-revenue .badge.private') !== null"
        )
        status, answer = await _submit_and_read(page, "revenue")
        assert (status, answer["result"]) == (200, {})
        assert _console_problems(page.events) == []


EVENTS = "[...document.querySelectorAll('section.event[data-event]')].map(s => s.dataset.event)"


async def test_the_page_shows_the_events_beside_the_methods(page: Page) -> None:
    """Events the service emits and handles are listed with their payload type and
    schema, delivery mode, the methods emitting them and the RabbitMQ routes; an
    undeclared event shows as untyped; methods link to the events they emit."""
    async with serving(PizzaService()) as service:
        await page.send("Page.navigate", url=f"{service.accessible_at}/docs")
        await page.wait_for("document.body && document.body.dataset.rendered")
        assert await page.evaluate(EVENTS) == ["menu.viewed", "order.placed", "oven.ready"]

        def text_of(selector: str) -> Any:
            return page.evaluate(
                f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent)"
            )

        assert await text_of("#event-order\\.placed h2 .badge") == ["emits · one-of-N"]
        assert await text_of("#event-menu\\.viewed h2 .badge") == ["emits · broadcast", "untyped"]
        assert await text_of("#event-oven\\.ready h2 .badge") == ["handles"]
        assert await text_of("#event-order\\.placed .payload-type") == ["Order"]
        schema = json.loads((await text_of("#event-order\\.placed pre.payload"))[0])
        assert schema["required"] == ["id", "pizzas"]
        assert await text_of("#event-order\\.placed .delivery li") == [
            "Emitted one-of-N: exactly one subscribing instance handles it, at least once — by order"
        ]
        assert await page.evaluate(
            "document.querySelector('#event-order\\\\.placed .delivery a').getAttribute('href')"
        ) == ("#method-order")
        oven = await text_of("#event-oven\\.ready .delivery li")
        assert oven[0].startswith("Handled in both modes: Put the next order in the free oven.")
        routes = await text_of("#event-oven\\.ready .routes li")
        assert "receive consumes queue gemstone.tasks.oven.ready (durable)" in routes
        assert (
            "send publishes to direct exchange gemstone.dead-letter, routing key oven.ready"
            + (" (persistent)")
            in routes
        )
        assert await text_of("#method-order .emits") == ["Emits: order.placed"]
        assert await text_of("nav h4") == ["Events"]
        assert "OvenReady" in await page.evaluate(
            "[...document.querySelectorAll('#schemas h3')].map(h => h.textContent)"
        )
        requested = [
            event["params"]["request"]["url"]
            for event in page.events
            if event["method"] == "Network.requestWillBeSent"
        ]
        assert requested == [f"{service.accessible_at}/docs"]  # nothing else is loaded
        assert _console_problems(page.events) == []

"""Request ids, the per-call log line, server-side tracebacks and JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.observability import JsonFormatter, RequestIdFilter, current_request_id

SRC = Path(__file__).resolve().parents[1] / "src"


class Journal(gemstone.MicroService):
    name = "journal"

    @gemstone.exposed_method()
    async def note(self, text: str) -> str | None:
        self.logger.info("noting %s", text)
        return current_request_id()

    @gemstone.exposed_method()
    def blocking_note(self, text: str) -> str | None:
        self.logger.info("noting in a thread %s", text)
        return current_request_id()

    @gemstone.exposed_method()
    async def fail(self) -> None:
        raise ValueError("secret internal detail")


def _rpc(method: str, params: Any = None, id_: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        message["params"] = params
    return message


@pytest.fixture
def journal() -> Journal:
    service = Journal()
    service.logger = logging.getLogger(f"gemstone_aio.service.journal.{uuid.uuid4().hex[:8]}")
    return service


async def test_request_id_round_trip_and_log_records(
    aiohttp_client: AiohttpClient, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(journal.make_app())
    caplog.set_level(logging.DEBUG, logger=journal.logger.name)
    request_id = f"req-{uuid.uuid4().hex}"

    response = await client.post(
        "/api", json=_rpc("note", ["hello"]), headers={"X-Request-Id": request_id}
    )
    assert response.headers["X-Request-Id"] == request_id
    assert (await response.json())["result"] == request_id

    mine = [r for r in caplog.records if r.name == journal.logger.name]
    assert [r.getMessage() for r in mine[:1]] == ["noting hello"]
    assert all(getattr(r, "request_id", None) == request_id for r in mine)
    call_lines = [r for r in mine if r.getMessage().startswith("call note took")]
    assert len(call_lines) == 1
    line = call_lines[0]
    assert line.levelno == logging.DEBUG
    assert line.rpc_method == "note"  # type: ignore[attr-defined]
    assert line.outcome == "ok"  # type: ignore[attr-defined]
    assert line.duration_ms >= 0  # type: ignore[attr-defined]


async def test_request_id_reaches_blocking_methods(
    aiohttp_client: AiohttpClient, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(journal.make_app())
    caplog.set_level(logging.INFO, logger=journal.logger.name)
    response = await client.post(
        "/api", json=_rpc("blocking_note", ["x"]), headers={"X-Request-Id": "thread-1"}
    )
    assert (await response.json())["result"] == "thread-1"
    records = [r for r in caplog.records if r.getMessage() == "noting in a thread x"]
    assert len(records) == 1
    assert records[0].request_id == "thread-1"  # type: ignore[attr-defined]
    assert current_request_id() is None  # nothing leaks out of the request


async def test_request_id_is_generated_when_absent_or_unusable(
    aiohttp_client: AiohttpClient, journal: Journal
) -> None:
    client = await aiohttp_client(journal.make_app())
    seen = set()
    for headers in ({}, {}, {"X-Request-Id": "x" * 129}, {"X-Request-Id": "has space"}):
        response = await client.post("/api", json=_rpc("note", ["a"]), headers=headers)
        request_id = response.headers["X-Request-Id"]
        assert len(request_id) == 32
        int(request_id, 16)
        assert (await response.json())["result"] == request_id
        seen.add(request_id)
    assert len(seen) == 4


async def test_request_id_on_other_responses(
    aiohttp_client: AiohttpClient, journal: Journal
) -> None:
    client = await aiohttp_client(journal.make_app())
    for method, path, status in (
        ("GET", "/missing", 404),
        ("GET", "/api", 405),
        ("GET", "/health", 200),
    ):
        response = await client.request(method, path, headers={"X-Request-Id": "probe-7"})
        assert response.status == status
        assert response.headers["X-Request-Id"] == "probe-7"


async def test_request_ids_can_be_turned_off(aiohttp_client: AiohttpClient) -> None:
    class Quiet(Journal):
        name = "quiet"
        request_id_header = None
        use_metrics = False

    client = await aiohttp_client(Quiet().make_app())
    response = await client.post("/api", json=_rpc("note", ["a"]), headers={"X-Request-Id": "abc"})
    assert "X-Request-Id" not in response.headers
    assert (await response.json())["result"] is None


async def test_tracebacks_stay_on_the_server(
    aiohttp_client: AiohttpClient, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(journal.make_app())
    response = await client.post("/api", json=_rpc("fail"), headers={"X-Request-Id": "bad-1"})
    text = await response.text()
    assert json.loads(text)["error"]["code"] == -32603
    assert "secret internal detail" not in text
    assert "Traceback" not in text
    errors = [r for r in caplog.records if r.exc_info and r.name == journal.logger.name]
    assert len(errors) == 1
    assert errors[0].request_id == "bad-1"  # type: ignore[attr-defined]
    assert errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == "secret internal detail"


async def test_json_lines_of_real_calls(aiohttp_client: AiohttpClient, journal: Journal) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    journal.logger.addHandler(handler)
    journal.logger.setLevel(logging.DEBUG)
    try:
        client = await aiohttp_client(journal.make_app())
        await client.post("/api", json=_rpc("note", ["j"]), headers={"X-Request-Id": "json-1"})
        await client.post("/api", json=_rpc("fail"), headers={"X-Request-Id": "json-2"})
    finally:
        journal.logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "noting j"
    assert lines[0]["level"] == "INFO"
    assert lines[0]["logger"] == journal.logger.name
    assert lines[0]["request_id"] == "json-1"
    call = lines[1]
    assert call["rpc_method"] == "note"
    assert call["outcome"] == "ok"
    assert call["request_id"] == "json-1"
    assert isinstance(call["duration_ms"], float)
    failure = next(line for line in lines if "exception" in line)
    assert failure["request_id"] == "json-2"
    assert "ValueError: secret internal detail" in failure["exception"]
    assert lines[-1]["outcome"] == "error -32603"


def test_filter_outside_a_request_and_formatter_with_odd_values() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "value %s", ("v",), None)
    record.payload = {1, 2}  # not JSON: written with repr
    assert RequestIdFilter().filter(record)
    assert record.request_id == "-"  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "value v"
    assert "request_id" not in line
    assert line["payload"] == "{1, 2}"


def test_configure_logging_in_a_real_process() -> None:
    script = (
        "import logging\n"
        "from gemstone_aio.observability import configure_logging\n"
        "from gemstone_aio.protocol import CallContext, current_call\n"
        "configure_logging()\n"
        "logging.getLogger('user.code').info('outside')\n"
        "current_call.set(CallContext(request_id='proc-1'))\n"
        "logging.getLogger('user.code').info('inside')\n"
        "configure_logging(json_lines=True)\n"
        "logging.getLogger('user.code').warning('hello %s', 'there')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    )
    text_outside, text_inside, json_line = done.stderr.strip().splitlines()
    assert text_outside.endswith("INFO user.code [-] outside")
    assert text_inside.endswith("INFO user.code [proc-1] inside")
    line = json.loads(json_line)
    assert line["message"] == "hello there"
    assert line["logger"] == "user.code"
    assert line["request_id"] == "proc-1"
    assert line["level"] == "WARNING"

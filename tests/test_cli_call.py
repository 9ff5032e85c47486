"""``gemstone call`` and ``gemstone call_raw`` against real services, in subprocesses."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.cli import RunCli, WireRecorder, start_cli
from tests.fixtures.services import Calculator


class Vault(gemstone.MicroService):
    """A service with a private method; callers authenticate with X-Api-Token or X-Key."""

    name = "vault"

    def authenticate_request(self, request: web.Request) -> Any:
        token = request.headers.get("X-Api-Token") or request.headers.get("X-Key")
        return token == "s3cret" and "admin"

    @gemstone.exposed_method(private=True)
    async def secret(self) -> str:
        return "the treasure"


class Catalog(gemstone.MicroService):
    """Declared types the CLI reads from rpc.discover."""

    name = "catalog"

    @gemstone.exposed_method()
    async def store(
        self, count: int, tags: list[str], flag: bool = False, label: str = ""
    ) -> dict[str, Any]:
        return {"count": count, "tags": tags, "flag": flag, "label": label}


@pytest.fixture
async def calc() -> AsyncIterator[Calculator]:
    async with serving(Calculator()) as service:
        yield service


# -- call_raw: params forms --------------------------------------------------------------


async def test_call_raw_prints_the_result_on_stdout_and_timing_on_stderr(
    calc: Calculator, gemstone_cli: RunCli
) -> None:
    """The result alone on stdout (it pipes cleanly); the timing on stderr. ``call_raw``,
    gemstone 0.10's spelling, runs the same command."""
    for spelling in ("call-raw", "call_raw"):
        result = await gemstone_cli(
            spelling, calc.accessible_at, "subtract", "minuend:=42", "subtrahend:=23"
        )
        assert result.code == 0, result.stderr
        assert result.stdout == "19\n"
        (note,) = result.stderr.splitlines()
        assert note.startswith("[!] Method call: ")
        assert note.endswith(" seconds")


async def test_call_raw_json_prints_only_the_result(calc: Calculator, gemstone_cli: RunCli) -> None:
    result = await gemstone_cli("call-raw", "--json", calc.accessible_at, "get_data")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == ["hello", 5]
    assert result.stdout.count("\n") == 1


async def test_key_value_sends_a_string(calc: Calculator, gemstone_cli: RunCli) -> None:
    result = await gemstone_cli("call_raw", "--json", calc.accessible_at, "say_hello", "name=a=b")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == "hello a=b"


async def test_positional_json_values(calc: Calculator, gemstone_cli: RunCli) -> None:
    result = await gemstone_cli("call_raw", "--json", calc.accessible_at, "sum", "1", "2", "39")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == 42
    text = await gemstone_cli("call_raw", "--json", calc.accessible_at, "echo", "not json")
    assert json.loads(text.stdout) == "not json"
    typed = await gemstone_cli("call_raw", "--json", calc.accessible_at, "echo", '{"a": [1, null]}')
    assert json.loads(typed.stdout) == {"a": [1, None]}


async def test_wire_forms_without_rpc_discover(
    plain_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    recorder, url = plain_recorder
    result = await gemstone_cli("call_raw", "--json", url, "store", "count=3", 'tags:=[1,"x"]')
    assert result.code == 0, result.stderr
    # The service cannot describe itself: strings stay strings, typed values stay typed.
    assert json.loads(result.stdout) == {
        "method": "store",
        "params": {"count": "3", "tags": [1, "x"]},
    }
    assert [m["method"] for m in recorder.received] == ["rpc.discover", "store"]
    none = await gemstone_cli("call_raw", "--json", url, "store")
    assert json.loads(none.stdout) == {"method": "store", "params": None}
    assert "params" not in recorder.received[-1]


async def test_strings_are_converted_to_declared_types(
    typed_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    recorder, url = typed_recorder
    result = await gemstone_cli(
        "call_raw", "--json", url, "store", "count=3", "flag=true", "label=12", 'tags=["a"]'
    )
    assert result.code == 0, result.stderr
    assert recorder.received[-1]["params"] == {
        "count": 3,
        "flag": True,
        "label": "12",
        "tags": ["a"],
    }
    raw = await gemstone_cli("call_raw", "--json", "--no-discover", url, "store", "count=3")
    assert raw.code == 0, raw.stderr
    assert recorder.received[-1] == {
        "jsonrpc": "2.0",
        "method": "store",
        "params": {"count": "3"},
        "id": recorder.received[-1]["id"],
    }
    assert "rpc.discover" not in [m["method"] for m in recorder.received[-1:]]
    # Only typed values: no need to ask rpc.discover.
    before = len(recorder.received)
    await gemstone_cli("call_raw", "--json", url, "store", "count:=4")
    assert [m["method"] for m in recorder.received[before:]] == ["store"]


async def test_declared_types_of_a_real_service(gemstone_cli: RunCli) -> None:
    async with serving(Catalog()) as catalog:
        typed, untyped = await asyncio.gather(
            gemstone_cli(
                "call_raw",
                "--json",
                catalog.accessible_at,
                "store",
                "count=2",
                'tags=["a", "b"]',
                "flag=yes",
                "label=007",
            ),
            gemstone_cli(
                "call_raw",
                "--no-discover",
                catalog.accessible_at,
                "store",
                "count=2",
                'tags=["a", "b"]',
            ),
        )
    assert typed.code == 0, typed.stderr
    assert json.loads(typed.stdout) == {
        "count": 2,
        "tags": ["a", "b"],
        "flag": True,
        "label": "007",
    }
    # Sent as a string, the list is rejected by the service.
    assert untyped.code == 1
    assert "error: JSON-RPC error -32602" in untyped.stderr
    assert "tags" in untyped.stderr


async def test_headers_and_token(
    plain_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    recorder, url = plain_recorder
    result = await gemstone_cli(
        "call_raw", "--token", "t0k", "-H", "X-Trace: abc", "--header", "X-Other:v", url, "m", "1"
    )
    assert result.code == 0, result.stderr
    headers = recorder.headers[-1]
    assert headers["X-Api-Token"] == "t0k"
    assert headers["X-Trace"] == "abc"
    assert headers["X-Other"] == "v"


async def test_private_method_needs_the_token(gemstone_cli: RunCli) -> None:
    async with serving(Vault()) as vault:
        denied = await gemstone_cli("call_raw", vault.accessible_at, "secret")
        assert denied.code == 1
        assert "error: JSON-RPC error -32001" in denied.stderr
        assert denied.stdout == ""
        ok = await gemstone_cli(
            "call_raw", "--json", "--token", "s3cret", vault.accessible_at, "secret"
        )
        assert (ok.code, json.loads(ok.stdout)) == (0, "the treasure")
        other = await gemstone_cli(
            "call_raw",
            "--json",
            "--token",
            "s3cret",
            "--token-header",
            "X-Key",
            vault.accessible_at,
            "secret",
        )
        assert (other.code, json.loads(other.stdout)) == (0, "the treasure")


# -- exit codes --------------------------------------------------------------------------


async def test_jsonrpc_error_prints_code_message_data(
    calc: Calculator, gemstone_cli: RunCli
) -> None:
    missing = await gemstone_cli("call_raw", calc.accessible_at, "nope")
    assert missing.code == 1
    assert missing.stderr.startswith(f"error: JSON-RPC error -32601 from {calc.accessible_at}: ")
    assert "Traceback" not in missing.stderr
    bad = await gemstone_cli(
        "call_raw", calc.accessible_at, "subtract", "minuend=x", "subtrahend:=1"
    )
    assert bad.code == 1
    assert "error: JSON-RPC error -32602" in bad.stderr
    data = json.loads(bad.stderr.split("data: ", 1)[1])
    assert any("minuend" in json.dumps(item) for item in data)
    assert bad.stdout == ""


async def test_connection_refused_exits_3(gemstone_cli: RunCli) -> None:
    url = f"http://127.0.0.1:{unused_port()}/api"
    result = await gemstone_cli("call_raw", url, "anything")
    assert result.code == 3
    assert result.stderr.startswith(f"error: cannot reach {url}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


async def test_timeout_exits_3(calc: Calculator, gemstone_cli: RunCli) -> None:
    result = await gemstone_cli("call_raw", "--timeout", "0.3", calc.accessible_at, "nap", "5")
    assert result.code == 3
    assert result.stderr == f"error: {calc.accessible_at} did not answer within 0.3 s\n"


@pytest.mark.parametrize(
    ("options", "params", "message"),
    [
        ([], ["a=1", "2"], "error: 'a=1' is by name and '2' is by position"),
        ([], ["n:=oops"], "error: 'n:=oops': the value after ':=' is not JSON"),
        ([], ["a=1", "a=2"], "error: param 'a' is given twice"),
        (["--header", "nocolon"], [], "error: --header 'nocolon': expected NAME:VALUE"),
        (["--bearer", " "], [], "error: --bearer needs a token"),
        (["--timeout", "0"], [], "error: --timeout must be positive, got 0.0"),
    ],
)
async def test_usage_errors_exit_2(
    options: list[str], params: list[str], message: str, gemstone_cli: RunCli
) -> None:
    result = await gemstone_cli("call_raw", *options, "http://127.0.0.1:9/api", "m", *params)
    assert result.code == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


async def test_bad_urls_exit_2(gemstone_cli: RunCli) -> None:
    raw, registry, describe = await asyncio.gather(
        gemstone_cli("call_raw", "notaurl", "m"),
        gemstone_cli("call", "-r", "ftp://127.0.0.1/", "svc", "m"),
        gemstone_cli("describe", "127.0.0.1:8000"),
    )
    hint = "is not an http(s) URL such as http://127.0.0.1:8000/api\n"
    assert (raw.code, raw.stderr) == (2, f"error: URL 'notaurl' {hint}")
    assert (registry.code, registry.stderr) == (2, f"error: --registry 'ftp://127.0.0.1/' {hint}")
    assert (describe.code, describe.stderr) == (2, f"error: URL '127.0.0.1:8000' {hint}")


async def test_a_reply_that_is_not_jsonrpc_exits_3(
    plain_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    _, url = plain_recorder
    missing = url.replace("/api", "/nothing-here")
    result = await gemstone_cli("call_raw", missing, "m")
    assert result.code == 3
    assert result.stderr == f"error: {missing} answered HTTP 404\n"


async def test_click_usage_errors_exit_2(gemstone_cli: RunCli) -> None:
    missing = await gemstone_cli("call_raw", "http://127.0.0.1:9/api")
    assert missing.code == 2
    assert "Missing argument" in missing.stderr
    unknown = await gemstone_cli("call_raw", "--bogus", "http://127.0.0.1:9/api", "m")
    assert unknown.code == 2
    assert "No such option" in unknown.stderr
    no_registry = await gemstone_cli("call", "calculator", "sum")
    assert no_registry.code == 2
    assert (
        no_registry.stderr == "error: no registry: pass --registry URL or set GEMSTONE_REGISTRY\n"
    )


# -- call through a registry -------------------------------------------------------------


async def test_call_through_registry(calc: Calculator, gemstone_cli: RunCli) -> None:
    async with serving(ServiceRegistry()) as registry:
        assert calc.accessible_at is not None
        await registry.ping("calculator", calc.accessible_at)
        result = await gemstone_cli(
            "call", "--registry", registry.accessible_at, "calc*", "subtract", "10", "4"
        )
        assert result.code == 0, result.stderr
        assert result.stdout == "6\n"
        lines = result.stderr.splitlines()
        assert lines[0].startswith("[!] Service identification: ")
        assert lines[1] == "[!] Service name: calc*"
        assert lines[2] == f"[!] Service URL : {calc.accessible_at}"
        assert lines[3].startswith("[!] Method call: ")
        assert len(lines) == 4
        via_env = await gemstone_cli(
            "call",
            "--json",
            "calculator",
            "say_hello",
            "name=env",
            env={"GEMSTONE_REGISTRY": registry.accessible_at},
        )
        assert (via_env.code, json.loads(via_env.stdout)) == (0, "hello env")


async def test_call_skips_dead_instances(calc: Calculator, gemstone_cli: RunCli) -> None:
    async with serving(ServiceRegistry()) as registry:
        await registry.ping("calculator", f"http://127.0.0.1:{unused_port()}/api")
        assert calc.accessible_at is not None
        await registry.ping("calculator", calc.accessible_at)
        result = await gemstone_cli(
            "call", "--json", "-r", registry.accessible_at, "calculator", "get_data"
        )
        assert (result.code, json.loads(result.stdout)) == (0, ["hello", 5])


async def test_call_no_match_exits_4(gemstone_cli: RunCli) -> None:
    async with serving(ServiceRegistry()) as registry:
        result = await gemstone_cli("call", "-r", registry.accessible_at, "ghost.*", "m")
    assert result.code == 4
    assert result.stderr == (
        f"error: registry {registry.accessible_at} knows no live service matching 'ghost.*'\n"
    )


async def test_call_registry_unreachable_exits_3(gemstone_cli: RunCli) -> None:
    url = f"http://127.0.0.1:{unused_port()}/api"
    result = await gemstone_cli("call", "-r", url, "x", "m")
    assert result.code == 3
    assert result.stderr.startswith(f"error: cannot reach {url}")


async def test_call_all_instances_dead_exits_3(gemstone_cli: RunCli) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/api"
    async with serving(ServiceRegistry()) as registry:
        await registry.ping("calculator", dead)
        result = await gemstone_cli("call", "-r", registry.accessible_at, "calculator", "m")
    assert result.code == 3
    assert result.stderr.startswith(f"error: cannot reach {dead}")


# -- credentials, globs, Ctrl-C ------------------------------------------------------------


async def test_bearer_and_headers_are_sent(
    plain_recorder: tuple[WireRecorder, str], gemstone_cli: RunCli
) -> None:
    """``--bearer TOKEN`` sends ``Authorization: Bearer TOKEN``; ``-H NAME:VALUE`` a header."""
    recorder, url = plain_recorder
    result = await gemstone_cli(
        "call-raw", "--bearer", "b3arer", "-H", "X-Trace:abc", "--header", "X-Other: v", url, "m"
    )
    assert result.code == 0, result.stderr
    headers = recorder.headers[-1]
    assert headers["Authorization"] == "Bearer b3arer"
    assert (headers["X-Trace"], headers["X-Other"]) == ("abc", "v")


class Greeter(gemstone.MicroService):
    """A service without ``subtract``, found by the same glob as the calculator."""

    name = "shop.greeter"

    @gemstone.exposed_method()
    async def greet(self) -> str:
        return "hi"


async def test_a_glob_calls_a_service_that_has_the_method(
    calc: Calculator, gemstone_cli: RunCli
) -> None:
    """``shop.*`` matches a greeter (listed first) and a calculator: the calculator answers;
    a method no match has is a one-line error, exit 4."""
    async with serving(ServiceRegistry()) as registry, serving(Greeter()) as greeter:
        await registry.ping("shop.greeter", greeter.accessible_at or "")
        await registry.ping("shop.calculator", calc.accessible_at or "")
        assert (await registry.locate_service("shop.*"))[0] == greeter.accessible_at
        found, missing, exact = await asyncio.gather(
            gemstone_cli("call", "-r", registry.accessible_at, "shop.*", "subtract", "5", "2"),
            gemstone_cli("call", "-r", registry.accessible_at, "shop.*", "nope"),
            gemstone_cli("call", "-r", registry.accessible_at, "shop.greeter", "subtract"),
        )
    assert (found.code, found.stdout) == (0, "3\n"), found.stderr
    assert f"[!] Service URL : {calc.accessible_at}" in found.stderr
    assert missing.code == 4
    assert missing.stderr == (
        f"error: no service matching 'shop.*' has a method 'nope' (asked 2: "
        f"{greeter.accessible_at}, {calc.accessible_at})\n"
    )
    assert exact.code == 1  # an exact name: the service's own answer, method not found
    assert "JSON-RPC error -32601" in exact.stderr


class Sleepy(gemstone.MicroService):
    """Says when a call started, then waits until released."""

    name = "sleepy"

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.released = asyncio.Event()

    @gemstone.exposed_method()
    async def nap(self) -> str:
        self.started.set()
        await self.released.wait()
        return "rested"


async def test_ctrl_c_during_a_call_exits_130_quietly() -> None:
    """Ctrl-C while waiting for an answer: exit 130, nothing on stdout or stderr."""
    async with serving(Sleepy()) as sleepy:
        proc = await start_cli("call-raw", "--no-discover", sleepy.accessible_at or "", "nap")
        try:
            await asyncio.wait_for(sleepy.started.wait(), 20)  # the call is in flight
            proc.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(proc.communicate(), 20)
        finally:
            sleepy.released.set()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert (proc.returncode, out, err) == (130, b"", b"")

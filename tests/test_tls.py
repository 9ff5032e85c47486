"""TLS and mutual TLS: services, the client, the CLI, the registry and its heartbeat.

Every certificate comes from a CA trustme makes at test time (``tests/fixtures/tls.py``);
nothing is kept in the repository. Servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import ssl
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
import gemstone_aio.tls
from gemstone_aio.client import AccessDeniedError, ServiceUnavailableError
from gemstone_aio.config import EnvironmentConfigurator, JsonFileConfigurator
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.server import CONNECTIONS_KEY
from gemstone_aio.testing import serving
from gemstone_aio.tls import CertificateIdentity, peer_certificate
from tests.fixtures.cli import run_cli, start_cli, stop, wait_for_line
from tests.fixtures.tls import TlsFiles


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            outcome = condition()
            if not isinstance(outcome, bool):
                outcome = await outcome
            if outcome:
                return
            await asyncio.sleep(0.02)


class Echo(gemstone.MicroService):
    name = "tls_echo"

    @gemstone.exposed_method()
    async def echo(self, text: str) -> str:
        return text

    @gemstone.exposed_method(requires_handler_reference=True)
    async def whoami(self, handler: gemstone.RequestHandler) -> str | None:
        certificate = handler.peer_certificate
        return None if certificate is None else ",".join(certificate.names)

    @gemstone.exposed_method(private=True, requires_handler_reference=True)
    async def secret(self, handler: gemstone.RequestHandler) -> dict[str, Any]:
        identity = handler.identity
        if isinstance(identity, CertificateIdentity):
            return {"certificate": list(identity.names), "subject": identity.subject}
        return {"other": str(identity)}


def https_echo(tls: TlsFiles, **settings: Any) -> Echo:
    service = Echo()
    service.ssl_certfile, service.ssl_keyfile = tls.server_cert, tls.server_key
    for name, value in settings.items():
        setattr(service, name, value)
    return service


# -- serving HTTPS, the client verifying it ---------------------------------------------------


async def test_a_service_serves_https_and_the_client_verifies_it(tls: TlsFiles) -> None:
    async with serving(https_echo(tls)) as service:
        url = str(service.accessible_at)
        assert url.startswith("https://127.0.0.1:")
        async with gemstone.RemoteService(url, ssl_ca_certs=tls.ca_file) as client:
            assert await client.call("echo", "over tls") == "over tls"
            assert await client.call("whoami") is None  # no client certificate asked for

        def blocking() -> str:
            with gemstone.RemoteService(url, ssl_ca_certs=tls.ca_file) as client:
                result: str = client.methods.echo("blocking")
                return result

        assert await asyncio.to_thread(blocking) == "blocking"


async def test_a_server_signed_by_another_ca_is_refused(tls: TlsFiles, other_tls: TlsFiles) -> None:
    async with serving(https_echo(tls)) as service:
        url = str(service.accessible_at)
        for client in (
            gemstone.RemoteService(url, ssl_ca_certs=other_tls.ca_file),  # the wrong CA
            gemstone.RemoteService(url),  # the system store does not know the test CA
        ):
            async with client:
                with pytest.raises(ServiceUnavailableError, match="certificate was not accepted"):
                    await client.call("echo", "x")


async def test_verification_is_off_only_when_asked_and_says_so_once(
    tls: TlsFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(gemstone_aio.tls, "_warned_unverified", False)
    caplog.set_level(logging.WARNING, "gemstone_aio.tls")
    async with serving(https_echo(tls)) as service:
        for _ in range(2):
            async with gemstone.RemoteService(
                str(service.accessible_at), ssl_verify=False
            ) as client:
                assert await client.call("echo", "unverified") == "unverified"
    warnings = [r for r in caplog.records if "verification is off" in r.getMessage()]
    assert len(warnings) == 1


def test_tls_settings_come_from_the_command_line_the_environment_and_a_file(
    tls: TlsFiles, tmp_path: Path
) -> None:
    service = Echo()
    service.load_configuration(
        [
            f"--ssl-certfile={tls.server_cert}",
            "--ssl-keyfile",
            tls.server_key,
            f"--ssl-ca-certs={tls.ca_file}",
            "--ssl-cert-reqs=optional",
            "--ssl-allowed-clients=a.internal, b.internal",
        ]
    )
    assert service.ssl_certfile == tls.server_cert
    assert service.ssl_cert_reqs == ssl.CERT_OPTIONAL
    assert service.ssl_allowed_clients == ["a.internal", "b.internal"]
    assert str(service.accessible_at).startswith("https://")

    class FromEnvironment(Echo):
        configurators = (EnvironmentConfigurator(environ={"TLS_ECHO_SSL_CERTFILE": "c.pem"}),)

    configured = FromEnvironment()
    configured.load_configuration()
    assert configured.ssl_certfile == "c.pem"

    settings = tmp_path / "echo.json"
    settings.write_text(json.dumps({"ssl_certfile": "c.pem", "ssl_cert_reqs": 2}))

    class FromFile(Echo):
        configurators = (JsonFileConfigurator(settings),)

    from_file = FromFile()
    from_file.load_configuration()
    assert (from_file.ssl_certfile, from_file.ssl_cert_reqs) == ("c.pem", ssl.CERT_REQUIRED)
    assert from_file.get_current_configuration()["ssl_keyfile_password"] is None


def _copy(path: str, directory: Path, mode: int) -> str:
    target = directory / Path(path).name
    shutil.copyfile(path, target)
    target.chmod(mode)
    return str(target)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t, d: {"ssl_keyfile": _copy(t.server_key, d, 0o644)},
            r"^ssl_keyfile '.*\.key' holds a private key that other users can read or change "
            r"\(mode 0644\): chmod 600 ",
        ),
        (
            lambda t, d: {"ssl_keyfile": str(d / "missing.key")},
            r"^ssl_keyfile '.*missing\.key': No such file or directory$",
        ),
        (
            lambda t, d: {"ssl_keyfile": t.issue("someone.else")[1]},
            r"^ssl_certfile '.*' and ssl_keyfile '.*' do not match",
        ),
        (
            lambda t, d: {"ssl_certfile": t.server_key},
            r"^ssl_certfile '.*\.key' holds no PEM certificate$",
        ),
        (
            lambda t, d: {"ssl_ca_certs": t.server_key},
            r"^ssl_ca_certs '.*\.key' holds no PEM CA certificate$",
        ),
        (
            lambda t, d: {"ssl_cert_reqs": "required"},
            r"^ssl_cert_reqs=required needs ssl_ca_certs",
        ),
        (
            lambda t, d: {"ssl_allowed_clients": ("orders",)},
            r"^ssl_allowed_clients needs client certificates verified: set ssl_ca_certs",
        ),
        (
            lambda t, d: {"ssl_certfile": None},
            r"^ssl_keyfile set without ssl_certfile",
        ),
    ],
    ids=[
        "key-readable-by-others",
        "missing-key",
        "key-of-another-certificate",
        "no-certificate",
        "ca-bundle-without-ca",
        "required-without-ca",
        "allow-list-without-verification",
        "key-without-certificate",
    ],
)
async def test_unfit_tls_settings_stop_start_up_with_one_line(
    tls: TlsFiles,
    tmp_path: Path,
    change: Callable[[TlsFiles, Path], dict[str, Any]],
    message: str,
) -> None:
    service = https_echo(tls, **change(tls, tmp_path))
    with pytest.raises(gemstone.ServiceConfigurationError, match=message) as caught:
        async with serving(service):
            pass
    assert "\n" not in str(caught.value)


async def test_gemstone_run_refuses_a_key_readable_by_others(tls: TlsFiles, tmp_path: Path) -> None:
    module = tmp_path / "echo_service.py"
    module.write_text(SERVICE_MODULE)
    key = _copy(tls.server_key, tmp_path, 0o644)
    result = await run_cli(
        "run",
        f"{module}:Echo",
        "--port",
        "0",
        "--ssl-certfile",
        tls.server_cert,
        "--ssl-keyfile",
        key,
    )
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"ssl_keyfile '{key}' holds a private key that other users can read" in lines[0]


SERVICE_MODULE = textwrap.dedent(
    """
    import gemstone_aio as gemstone


    class Echo(gemstone.MicroService):
        name = "tls_cli_echo"

        @gemstone.exposed_method()
        async def echo(self, text: str) -> str:
            return text
    """
)


# -- mutual TLS as an identity ----------------------------------------------------------------


async def test_mutual_tls_admits_certificates_on_the_allow_list(
    tls: TlsFiles, other_tls: TlsFiles
) -> None:
    service = https_echo(tls, ssl_ca_certs=tls.ca_file, ssl_allowed_clients=("orders.internal",))
    allowed = tls.issue("orders.internal", common_name="orders")
    stranger = tls.issue("intruder.internal")
    foreign = other_tls.issue("orders.internal")
    async with serving(service):
        url = str(service.accessible_at)

        def client(files: tuple[str, str] | None) -> gemstone.RemoteService:
            certfile, keyfile = files if files is not None else (None, None)
            return gemstone.RemoteService(
                url, ssl_ca_certs=tls.ca_file, ssl_certfile=certfile, ssl_keyfile=keyfile
            )

        async with client(allowed) as orders:
            admitted = await orders.call("secret")
            assert admitted["certificate"] == ["orders", "orders.internal"]
            assert admitted["subject"].endswith(",CN=orders")
            assert await orders.call("whoami") == "orders,orders.internal"
        async with client(stranger) as intruder:
            assert await intruder.call("echo", "public methods answer") == "public methods answer"
            with pytest.raises(AccessDeniedError) as denied:
                await intruder.call("secret")
            assert denied.value.code == -32001
        for refused in (None, foreign):  # no certificate, or one another CA issued
            async with client(refused) as anonymous:
                with pytest.raises(ServiceUnavailableError):
                    await anonymous.call("echo", "x")


async def test_optional_client_certificates_and_tokens_together(tls: TlsFiles) -> None:
    service = https_echo(
        tls,
        ssl_ca_certs=tls.ca_file,
        ssl_cert_reqs="optional",
        ssl_allowed_clients=["billing.internal"],
        api_tokens={"t0ken": "token holder"},
    )
    billing = tls.issue("billing.internal")
    async with serving(service):
        url = str(service.accessible_at)
        async with gemstone.RemoteService(url, ssl_ca_certs=tls.ca_file) as anonymous:
            assert await anonymous.call("echo", "no certificate") == "no certificate"
            with pytest.raises(AccessDeniedError):
                await anonymous.call("secret")
        async with gemstone.RemoteService(url, ssl_ca_certs=tls.ca_file, token="t0ken") as holder:
            assert await holder.call("secret") == {"other": "token holder"}
        async with gemstone.RemoteService(
            url, ssl_ca_certs=tls.ca_file, ssl_certfile=billing[0], ssl_keyfile=billing[1]
        ) as certified:
            assert (await certified.call("secret"))["certificate"] == ["billing.internal"]


async def test_authenticate_request_reads_the_peer_certificate(tls: TlsFiles) -> None:
    class ByCommonName(Echo):
        name = "tls_by_common_name"

        def authenticate_request(self, request: web.Request) -> Any:
            certificate = peer_certificate(request)
            return certificate if certificate and certificate.common_name == "ops" else None

    service = ByCommonName()
    service.ssl_certfile, service.ssl_keyfile = tls.server_cert, tls.server_key
    service.ssl_ca_certs = tls.ca_file
    ops, dev = tls.issue("ops.internal", common_name="ops"), tls.issue("dev.internal")
    async with serving(service):
        url = str(service.accessible_at)
        async with gemstone.RemoteService(
            url, ssl_ca_certs=tls.ca_file, ssl_certfile=ops[0], ssl_keyfile=ops[1]
        ) as client:
            assert (await client.call("secret"))["certificate"] == ["ops", "ops.internal"]
        async with gemstone.RemoteService(
            url, ssl_ca_certs=tls.ca_file, ssl_certfile=dev[0], ssl_keyfile=dev[1]
        ) as client:
            with pytest.raises(AccessDeniedError):
                await client.call("secret")


# -- the registry and the heartbeat over HTTPS -------------------------------------------------


class Caller(gemstone.MicroService):
    name = "tls_caller"

    @gemstone.exposed_method()
    async def relay(self, text: str) -> str:
        echo = await self.get_service("tls_echo")
        result: str = await echo.call("echo", text)
        return result


async def test_the_heartbeat_and_get_service_over_https_with_client_certificates(
    tls: TlsFiles,
) -> None:
    registry = ServiceRegistry()
    registry.ssl_certfile, registry.ssl_keyfile = tls.server_cert, tls.server_key
    registry.ssl_ca_certs = tls.ca_file
    registry.ssl_allowed_clients = ["echo.internal", "caller.internal"]
    echo_cert, caller_cert = tls.issue("echo.internal"), tls.issue("caller.internal")
    async with serving(registry):
        registry_url = str(registry.accessible_at)
        assert registry_url.startswith("https://")
        echo = https_echo(
            tls,
            service_registry_urls=[registry_url],
            client_ssl_ca_certs=tls.ca_file,
            client_ssl_certfile=echo_cert[0],
            client_ssl_keyfile=echo_cert[1],
            unregister_propagation_delay=0,
        )
        caller = Caller()
        caller.service_registry_urls = [registry_url]
        caller.client_ssl_ca_certs = tls.ca_file
        caller.client_ssl_certfile, caller.client_ssl_keyfile = caller_cert
        caller.unregister_propagation_delay = 0
        async with serving(echo), serving(caller):
            echo_url = str(echo.accessible_at)
            await until(lambda: _located(registry, "tls_echo", echo_url))
            async with gemstone.RemoteService(
                str(caller.accessible_at), ssl_ca_certs=None
            ) as client:
                assert await client.call("relay", "through the registry") == (
                    "through the registry"
                )


async def _located(registry: ServiceRegistry, name: str, url: str) -> bool:
    return url in await registry.locate_service(name)


async def test_a_registry_requiring_client_certificates_refuses_other_pings(
    tls: TlsFiles,
) -> None:
    registry = ServiceRegistry()
    registry.ssl_certfile, registry.ssl_keyfile = tls.server_cert, tls.server_key
    registry.ssl_ca_certs = tls.ca_file
    registry.ssl_allowed_clients = ["echo.internal"]
    stranger = tls.issue("stranger.internal")
    async with serving(registry):
        registry_url = str(registry.accessible_at)
        async with gemstone.RemoteService(
            registry_url,
            ssl_ca_certs=tls.ca_file,
            ssl_certfile=stranger[0],
            ssl_keyfile=stranger[1],
        ) as client:
            with pytest.raises(AccessDeniedError):
                await client.call("ping", name="tls_echo", url="https://127.0.0.1:1/api")
            assert await client.call("locate_service", name="tls_echo") == []


async def test_the_cli_and_gemstone_registry_over_https(tls: TlsFiles) -> None:
    port = unused_port()
    registry = await start_cli(
        "registry",
        "--port",
        str(port),
        "--ssl-certfile",
        tls.server_cert,
        "--ssl-keyfile",
        tls.server_key,
    )
    try:
        line = await wait_for_line(registry.stderr, "serving at")
        registry_url = f"https://127.0.0.1:{port}/api"
        assert registry_url in line
        echo = https_echo(
            tls,
            service_registry_urls=[registry_url],
            client_ssl_ca_certs=tls.ca_file,
            unregister_propagation_delay=0,
        )
        async with serving(echo):
            url = str(echo.accessible_at)
            async with gemstone.RemoteService(registry_url, ssl_ca_certs=tls.ca_file) as client:
                await until(lambda: _lists(client, url))
            verified = await run_cli(
                "call", "--registry", registry_url, "tls_echo", "echo", "text=hello",
                "--ssl-ca-certs", tls.ca_file, "--json",
            )  # fmt: skip
            assert (verified.code, verified.stdout.strip()) == (0, '"hello"'), verified.stderr
            direct = await run_cli(
                "call-raw", url, "echo", "text=direct", "--ssl-ca-certs", tls.ca_file, "--json"
            )
            assert (direct.code, direct.stdout.strip()) == (0, '"direct"'), direct.stderr
            described = await run_cli("describe", url, "--ssl-ca-certs", tls.ca_file)
            assert described.code == 0, described.stderr
            assert "echo" in described.stdout
            unverified = await run_cli("call-raw", url, "echo", "text=x")
            assert unverified.code == 3
            assert "certificate was not accepted" in unverified.stderr
            missing = await run_cli("call-raw", url, "echo", "--ssl-ca-certs", "/nowhere.pem")
            assert missing.code == 2
            assert "--ssl-ca-certs '/nowhere.pem': No such file or directory" in missing.stderr
    finally:
        assert await stop(registry) == 0


async def _lists(client: gemstone.RemoteService, url: str) -> bool:
    services = await client.call("list_services")
    return url in services.get("tls_echo", [])


# -- rotation and the connection bound ---------------------------------------------------------


async def _served_certificate(port: int, ca_file: str) -> tuple[str, str]:
    context = gemstone_aio.tls.client_context(ca_file)
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        certificate = writer.get_extra_info("peercert")
        return str(certificate["serialNumber"]), str(certificate["subjectAltName"])
    finally:
        writer.close()
        await writer.wait_closed()


async def test_sighup_reloads_the_certificate_and_keeps_it_on_a_bad_file(
    tls: TlsFiles, tmp_path: Path
) -> None:
    module = tmp_path / "echo_service.py"
    module.write_text(SERVICE_MODULE)
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copyfile(tls.server_cert, cert)
    shutil.copyfile(tls.server_key, key)
    os.chmod(key, 0o600)
    port = unused_port()
    process = await start_cli(
        "run", f"{module}:Echo", "--port", str(port), "--ssl-certfile", cert, "--ssl-keyfile", key
    )
    try:
        await wait_for_line(process.stderr, "serving at https://")
        first = await _served_certificate(port, tls.ca_file)
        renewed = tls.issue("127.0.0.1", "localhost", "renewed.internal")
        for source, target in zip(renewed, (cert, key), strict=True):
            staged = target + ".new"
            shutil.copyfile(source, staged)
            os.chmod(staged, 0o600)
            os.replace(staged, target)  # as certificate managers do: atomically
        process.send_signal(signal.SIGHUP)
        await wait_for_line(process.stderr, "TLS certificate reloaded")
        second = await _served_certificate(port, tls.ca_file)
        assert second != first
        assert "renewed.internal" in second[1]
        os.chmod(key, 0o644)  # a broken rotation: the running certificate stays
        process.send_signal(signal.SIGHUP)
        await wait_for_line(process.stderr, "TLS files not reloaded")
        assert await _served_certificate(port, tls.ca_file) == second
    finally:
        assert await stop(process) == 0


async def test_connections_in_their_tls_handshake_count_against_the_bound(tls: TlsFiles) -> None:
    class Bounded(Echo):
        name = "tls_bounded"
        max_connections = 3
        keepalive_timeout = 1.0  # the handshake's time limit too

        def make_app(self) -> web.Application:
            self.served = super().make_app()
            return self.served

    service = Bounded()
    service.ssl_certfile, service.ssl_keyfile = tls.server_cert, tls.server_key
    async with serving(service):
        guard = service.served[CONNECTIONS_KEY]
        # Three connections that never start their handshake hold every slot.
        held = [await asyncio.open_connection("127.0.0.1", service.port) for _ in range(3)]
        await until(lambda: guard.open == 3)
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", service.port)
        assert await asyncio.wait_for(extra_reader.read(), 5) == b""  # closed at once
        extra_writer.close()
        assert guard.refused == 1
        # The handshake time limit closes the silent ones; then calls are served again.
        for reader, writer in held:
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        await until(lambda: guard.open == 0)
        async with gemstone.RemoteService(
            str(service.accessible_at), ssl_ca_certs=tls.ca_file
        ) as client:
            assert await client.call("echo", "room again") == "room again"


WORKERS_MODULE = textwrap.dedent(
    """
    import os

    import gemstone_aio as gemstone


    class Spread(gemstone.MicroService):
        name = "tls_spread"
        worker_processes = 2

        @gemstone.exposed_method()
        async def pid(self) -> int:
            return os.getpid()
    """
)


async def test_worker_processes_serve_tls_and_reload_on_sighup(
    tls: TlsFiles, tmp_path: Path
) -> None:
    module = tmp_path / "spread_service.py"
    module.write_text(WORKERS_MODULE)
    port = unused_port()
    process = await start_cli(
        "run", f"{module}:Spread", "--port", str(port),
        "--ssl-certfile", tls.server_cert, "--ssl-keyfile", tls.server_key,
    )  # fmt: skip
    try:
        for _ in range(2):
            await wait_for_line(process.stderr, "serving at https://")
        url = f"https://127.0.0.1:{port}/api"
        pids: set[int] = set()
        async with asyncio.timeout(20):
            while len(pids) < 2:  # new connections spread over both workers
                async with gemstone.RemoteService(url, ssl_ca_certs=tls.ca_file) as client:
                    pids.add(await client.call("pid"))
        process.send_signal(signal.SIGHUP)  # the supervisor passes it on to each worker
        for _ in range(2):
            await wait_for_line(process.stderr, "TLS certificate reloaded")
    finally:
        assert await stop(process) == 0

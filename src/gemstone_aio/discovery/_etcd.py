r"""Discovery through etcd (v3 API): instances hold leases, callers watch what they look up.

Each instance of a service is one key, ``<namespace>/<name>\0<url>`` (the value is the
URL), attached to a lease of ``ttl`` seconds. Each ping keeps the lease alive; when an
instance dies, its lease runs out and etcd deletes its key: there is no expiry sweep
and no clock to compare. A graceful stop deletes the key and revokes the lease.

A lookup reads the keys under the pattern's prefix (``<namespace>/<name>\0`` for a
name, ``<namespace>/<the glob's literal start>`` for a glob) once, and then watches
that prefix: etcd pushes every change, the strategy keeps the prefix's instances in
memory, and later lookups of the pattern are answered from there without a request.
So lookups cost in proportion to the instances under the prefix, and many callers do
not poll etcd in step. At most ``max_watches`` prefixes are watched (the least recently
used one is dropped past that); a watch that breaks is dropped too, and the next lookup
reads the prefix again.

The client is `aetcd <https://pypi.org/project/aetcd/>`_ (asyncio, gRPC), installed with
the ``etcd`` extra: ``pip install 'gemstone-aio[etcd]'``. aetcd 1.0 opens plain channels
only; for an ``https://`` endpoint the strategy opens aetcd's channel with gRPC's own TLS
credentials (``grpc.ssl_channel_credentials``) instead, everything else unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import yarl

from ..tls import check_client_files
from ._base import BaseDiscoveryStrategy
from ._glob import check_pattern, compile_glob, has_wildcards, literal_prefix
from ._urls import check_instance_url, is_loopback_host, parse_networks

__all__ = ["EtcdDiscoveryStrategy"]

_SEPARATOR = b"\x00"
_logger = logging.getLogger("gemstone_aio.discovery")


def _require_aetcd() -> Any:
    try:
        import aetcd
    except ImportError as exc:
        raise ImportError(
            "EtcdDiscoveryStrategy needs the 'aetcd' package: pip install 'gemstone-aio[etcd]'"
        ) from exc
    return aetcd


class _Watched:
    """The instances under one key prefix, kept current by a watch."""

    def __init__(self) -> None:
        self.instances: dict[bytes, tuple[str, str]] = {}  # key -> (name, url)
        self.revisions: dict[bytes, int] = {}  # key -> revision of the last change seen
        self.task: asyncio.Task[None] | None = None
        self.broken = False

    def apply(self, key: bytes, revision: int, found: tuple[str, str] | None) -> None:
        """Record a change of ``key`` unless a later one was seen already."""
        if self.revisions.get(key, 0) > revision:
            return
        self.revisions[key] = revision
        if found is None:
            self.instances.pop(key, None)
            if len(self.revisions) > 2 * len(self.instances) + 1024:
                live = self.instances
                self.revisions = {k: r for k, r in self.revisions.items() if k in live}
        else:
            self.instances[key] = found


class EtcdDiscoveryStrategy(BaseDiscoveryStrategy):
    """Heartbeat into and look services up in etcd (needs the ``etcd`` extra).

    Args:
        endpoint: etcd's client URL, e.g. ``http://127.0.0.1:2379`` (user and password
            in the URL, ``http://user:password@host:2379``, turn on etcd authentication);
            ``https://`` for TLS (the server is verified against gRPC's root
            certificates or ``ssl_ca_certs``, its host name checked).
        ttl: Seconds an instance stays listed after its last ping (its lease's TTL,
            rounded up to whole seconds; etcd may grant a little more).
        namespace: The prefix of the keys, so environments can share one etcd.
        timeout: Seconds an etcd request may take.
        max_watches: The most prefixes watched at once.
        allowed_networks: When not empty, an announced URL's host must be an IP address
            inside one of these networks (CIDR strings).
        insecure: Allow an etcd on another host without credentials in the URL.
        ssl_ca_certs: With ``https://``: the CA bundle (PEM) etcd's certificate is
            verified against (etcd's ``--trusted-ca-file`` side is the client's).
        ssl_certfile: With ``https://``: a client certificate (etcd's
            ``--client-cert-auth``); it counts as the credentials a remote etcd needs.
        ssl_keyfile: Its private key (refused if other users can read the file).

    Raises:
        ImportError: The ``aetcd`` package is not installed.
        ValueError: A bad ``ttl``, endpoint or network, an etcd on another host
            without credentials (and ``insecure`` is not set), or a TLS file that is
            unfit or given with an ``http://`` endpoint (the message names it).
    """

    def __init__(
        self,
        endpoint: str = "http://127.0.0.1:2379",
        *,
        ttl: float = 90.0,
        namespace: str = "gemstone/discovery",
        timeout: float = 5.0,
        max_watches: int = 64,
        allowed_networks: str | Sequence[str] = (),
        insecure: bool = False,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self._aetcd = _require_aetcd()
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        try:
            parsed = yarl.URL(endpoint)
        except ValueError:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"endpoint must be etcd's http:// client URL, got {endpoint!r}")
        tls_files = (ssl_ca_certs, ssl_certfile, ssl_keyfile)
        if any(tls_files) and parsed.scheme != "https":
            raise ValueError(
                f"ssl_ca_certs, ssl_certfile and ssl_keyfile need an https:// endpoint, got "
                f"{endpoint!r}"
            )
        if parsed.scheme == "https":
            check_client_files(*tls_files)
        if not (insecure or parsed.user or ssl_certfile or is_loopback_host(parsed.host)):
            raise ValueError(
                f"endpoint names an etcd on {parsed.host!r} without credentials: anyone who "
                "reaches it could register or remove instances; put a user and password in "
                "the URL (http://user:password@host:2379) or pass insecure=True"
            )
        self.endpoint = endpoint
        self._host, self._port = parsed.host, parsed.port or 2379
        self._user, self._password = parsed.user, parsed.password
        self._tls: tuple[str | None, str | None, str | None] | None = (
            tls_files if parsed.scheme == "https" else None
        )
        self.ttl = ttl
        self.namespace = namespace.rstrip("/")
        self.timeout = timeout
        self.max_watches = max_watches
        self.allowed_networks = parse_networks(allowed_networks)
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._leases: dict[tuple[str, str], Any] = {}
        self._watched: OrderedDict[bytes, _Watched] = OrderedDict()

    # -- connections -------------------------------------------------------------------

    async def _etcd(self) -> Any:
        # gRPC channels belong to one event loop: start afresh in another one.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._watched.clear()
            self._leases.clear()
            self._loop = loop
            options: dict[str, Any] = {
                "host": self._host,
                "port": self._port,
                "username": self._user,
                "password": self._password,
                "timeout": self.timeout,
            }
            if self._tls is None:
                self._client = self._aetcd.Client(**options)
            else:
                client_class = _tls_client_class(self._aetcd)
                self._client = client_class(credentials=_credentials(*self._tls), **options)
        client = self._client
        async with asyncio.timeout(self.timeout):
            await client.connect()
        return client

    def _key(self, name: str, url: str) -> bytes:
        return self._prefix(name) + _SEPARATOR + url.encode()

    def _prefix(self, start: str) -> bytes:
        return f"{self.namespace}/{start}".encode()

    def _parse(self, key: bytes) -> tuple[str, str] | None:
        rest = key[len(self.namespace) + 1 :]
        name, separator, url = rest.partition(_SEPARATOR)
        if not separator:
            return None
        return name.decode("utf-8", "replace"), url.decode("utf-8", "replace")

    # -- announcing --------------------------------------------------------------------

    async def ping(self, name: str, url: str) -> None:
        """Keep the instance's lease alive; (re)create lease and key when there is none."""
        check_instance_url(url, self.allowed_networks)
        client = await self._etcd()
        lease = self._leases.get((name, url))
        if lease is not None:
            reply = await lease.refresh()
            if reply is not None and reply.TTL > 0:
                return
            self._leases.pop((name, url), None)  # it ran out (a long pause, an etcd restore)
        lease = await client.lease(max(1, math.ceil(self.ttl)))
        try:
            put = await client.put(self._key(name, url), url.encode(), lease=lease.id)
        except BaseException:
            with contextlib.suppress(Exception):
                await lease.revoke()
            raise
        self._leases[(name, url)] = lease
        self._saw(self._key(name, url), put.header.revision, (name, url))

    async def unregister(self, name: str, url: str) -> None:
        """Delete the instance's key and revoke its lease."""
        client = await self._etcd()
        key = self._key(name, url)
        deleted = await client.delete(key)
        lease = self._leases.pop((name, url), None)
        if lease is not None:
            with contextlib.suppress(Exception):
                await lease.revoke()
        if deleted is not None:
            self._saw(key, deleted.header.revision, None)

    def _saw(self, key: bytes, revision: int, found: tuple[str, str] | None) -> None:
        """Apply this process's own change at once (its watch event follows)."""
        for prefix, watched in self._watched.items():
            if key.startswith(prefix):
                watched.apply(key, revision, found)

    # -- looking up --------------------------------------------------------------------

    async def locate(self, pattern: str) -> list[str]:
        """Return the live instances matching ``pattern``, from a watched prefix if possible."""
        check_pattern(pattern)
        if has_wildcards(pattern):
            glob = compile_glob(pattern)
            prefix = self._prefix(literal_prefix(pattern))
        else:
            glob = None
            prefix = self._prefix(pattern) + _SEPARATOR
        watched = await self._watching(prefix)
        if glob is None:
            return [url for _, url in watched.instances.values()]
        return list(
            dict.fromkeys(url for name, url in watched.instances.values() if glob.matches(name))
        )

    async def _watching(self, prefix: bytes) -> _Watched:
        watched = self._watched.get(prefix)
        if watched is not None and not watched.broken and self._loop is asyncio.get_running_loop():
            self._watched.move_to_end(prefix)
            return watched
        client = await self._etcd()
        found = await client.get_prefix(prefix)
        watched = _Watched()
        for kv in found:
            parsed = self._parse(kv.key)
            if parsed is not None:
                watched.apply(kv.key, kv.mod_revision, parsed)
        revision = found.header.revision
        watch = await client.watch_prefix(prefix, start_revision=revision + 1)
        watched.task = asyncio.create_task(
            self._follow(watch, watched), name=f"gemstone-etcd-watch-{prefix!r}"
        )
        old = self._watched.pop(prefix, None)
        self._watched[prefix] = watched
        if old is not None:
            await _stop(old)
        while len(self._watched) > self.max_watches:
            _, dropped = self._watched.popitem(last=False)
            await _stop(dropped)
        return watched

    async def _follow(self, watch: Any, watched: _Watched) -> None:
        try:
            async for event in watch:
                kv = event.kv
                if event.kind == "PUT":
                    watched.apply(kv.key, kv.mod_revision, self._parse(kv.key))
                else:
                    watched.apply(kv.key, kv.mod_revision, None)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await watch.cancel()
            raise
        except Exception as exc:
            _logger.info("etcd watch ended, the next lookup reads again: %s", exc)
        watched.broken = True

    async def aclose(self) -> None:
        """Stop the watches, revoke nothing (leases run out), and close the connection."""
        watched = list(self._watched.values())
        self._watched.clear()
        for one in watched:
            await _stop(one)
        self._leases.clear()
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await client.close()

    def __repr__(self) -> str:
        shown = yarl.URL(self.endpoint).with_password(None) if self._password else self.endpoint
        return f"EtcdDiscoveryStrategy({str(shown)!r}, namespace={self.namespace!r})"


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as file:
        return file.read()


def _credentials(ca_certs: str | None, certfile: str | None, keyfile: str | None) -> Any:
    """The TLS credentials of gRPC from the (already checked) files."""
    grpc: Any = importlib.import_module("grpc")  # installed with aetcd
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_certs),
        private_key=_read(keyfile or certfile) if certfile else None,
        certificate_chain=_read(certfile),
    )


_TLS_CLIENTS: dict[int, Any] = {}


def _tls_client_class(aetcd: Any) -> Any:
    """The aetcd client class, its channel opened with gRPC's TLS credentials.

    aetcd 1.0's ``connect()`` opens ``insecure_channel`` only; this one is the same with
    ``secure_channel``.
    """
    found = _TLS_CLIENTS.get(id(aetcd))
    if found is not None:
        return found
    rpc, watcher = aetcd.rpc, aetcd.watcher

    class TlsClient(aetcd.Client):  # type: ignore[misc]
        _is_connecting: bool

        def __init__(self, *, credentials: Any, **options: Any) -> None:
            super().__init__(**options)
            self._credentials = credentials

        async def connect(self) -> None:
            if self._connected.is_set():
                return
            if self._is_connecting:  # another task is connecting: wait for it
                await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
                return
            try:
                self._is_connecting = True
                target = f"{self._host}:{self._port}"
                self.channel = rpc.secure_channel(
                    target, self._credentials, options=self._options.items()
                )
                if self._username is not None and self._password is not None:
                    self.auth_stub = rpc.AuthStub(self.channel)
                    request = rpc.AuthenticateRequest(name=self._username, password=self._password)
                    reply = await self.auth_stub.Authenticate(request, timeout=self._timeout)
                    self.metadata = (("token", reply.token),)
                self.kvstub = rpc.KVStub(self.channel)
                self.clusterstub = rpc.ClusterStub(self.channel)
                self.leasestub = rpc.LeaseStub(self.channel)
                self.maintenancestub = rpc.MaintenanceStub(self.channel)
                self._watcher = watcher.Watcher(
                    rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata
                )
                self._connected.set()
            finally:
                self._is_connecting = False

    _TLS_CLIENTS[id(aetcd)] = TlsClient
    return TlsClient


async def _stop(watched: _Watched) -> None:
    task, watched.task = watched.task, None
    watched.broken = True
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

"""``gemstone shell``: an asyncio REPL where the registry's services are objects.

``await shop.inventory.available("apple")`` calls the method ``available`` of the service
``shop.inventory``; Tab completes service and method names (from each service's
``rpc.discover``), ``help(shop.inventory.available)`` shows its signature and docs.

The REPL reads input in the main thread (so Ctrl-C interrupts a call or clears the
line, as in Python's own REPL) and runs every statement on an event loop in a second
thread, compiled with top-level ``await`` allowed, as ``python -m asyncio`` does.
"""

from __future__ import annotations

import ast
import asyncio
import code
import concurrent.futures
import inspect
import keyword
import re
import sys
import threading
import types
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from ..errors import CalledServiceError
from ._client import ClientOptions, check_url, run_client
from ._discover import builtin_methods, fetch_openrpc, method_signature, plain_text
from ._options import (
    BearerOpt,
    CaCertsOpt,
    CertfileOpt,
    HeaderOpt,
    KeyfileOpt,
    NoVerifyOpt,
    TimeoutOpt,
    TokenHeaderOpt,
    TokenOpt,
    client_options,
)
from ._output import ExitCode, dumps, fail

__all__ = ["ShellMethod", "ShellService", "shell"]


def _identifier(part: str) -> str:
    name = re.sub(r"\W", "_", part)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"_{name}"
    return name


class _Namespace:
    """A dotted prefix of service names (``shop`` in ``shop.inventory``)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._children: dict[str, Any] = {}

    def _child(self, name: str, value: Any) -> None:
        self._children[name] = value

    def __getattr__(self, name: str) -> Any:
        children = self.__dict__.get("_children", {})
        if name in children:
            return children[name]
        raise AttributeError(f"no service {self._path}.{name}")

    def __dir__(self) -> list[str]:
        return sorted(self._children)

    def __repr__(self) -> str:
        return f"<services {self._path}.*: {', '.join(sorted(self._children))}>"


class ShellMethod:
    """One method of a remote service: calling it returns an awaitable of the result."""

    def __init__(self, client: Any, name: str, doc: str) -> None:
        self._client = client
        self.__name__ = name
        self.__doc__ = doc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._client.call(self.__name__, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<method {self.__name__}: await it with its params>"


class ShellService(_Namespace):
    """A remote service: its methods are attributes (listed by Tab and ``dir()``)."""

    def __init__(self, name: str, url: str, client: Any, methods: Mapping[str, str]) -> None:
        super().__init__(name)
        self.url = url
        self._client = client
        self._methods = dict(methods)

    def __getattr__(self, name: str) -> Any:
        children = self.__dict__.get("_children", {})
        if name in children:
            return children[name]
        methods = self.__dict__.get("_methods", {})
        if name in methods or (not methods and not name.startswith("_")):
            return ShellMethod(self._client, name, methods.get(name, ""))
        raise AttributeError(f"service {self._path} has no method {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*self._methods, *self._children})

    def __repr__(self) -> str:
        methods = ", ".join(sorted(self._methods)) or "(not described)"
        return f"<service {self._path} at {self.url}: {methods}>"


async def _describe(client: Any) -> tuple[str | None, dict[str, str]]:
    """The service's name and its methods with their help text (``{}`` if undescribed)."""
    document = await fetch_openrpc(client)
    if document is None:
        return None, {}
    info = document.get("info")
    title = info.get("title") if isinstance(info, Mapping) else None
    hidden = builtin_methods(document)
    methods: dict[str, str] = {}
    for method in document.get("methods") or ():
        if isinstance(method, Mapping) and method.get("name") not in hidden:
            doc = plain_text(str(method.get("description") or method.get("summary") or ""))
            methods[str(method["name"])] = f"{method_signature(method, document)}\n\n{doc}".strip()
    return (str(title) if title else None), methods


async def _build(
    registry: str | None, urls: list[str], options: ClientOptions
) -> dict[str, ShellService]:
    targets: list[tuple[str | None, str]] = [(None, url) for url in urls]
    if registry is not None:
        async with options.client(registry) as reg:
            listed = await reg.request("list_services")
        if not isinstance(listed, Mapping):
            fail(
                f"registry {registry} answered list_services with {dumps(listed)}",
                ExitCode.UNREACHABLE,
            )
        targets += [(str(name), str(found[0])) for name, found in listed.items() if found]
    services: dict[str, ShellService] = {}
    for name, url in targets:
        client = options.client(url)
        title, methods = await _describe(client)
        label = name or title or url
        services[label] = ShellService(label, url, client, methods)
    return services


def _namespace(services: Mapping[str, ShellService]) -> dict[str, Any]:
    """``{"shop": <shop.*>, "services": {...}, "asyncio": ...}`` for the REPL."""
    roots: dict[str, Any] = {}
    for label, service in sorted(services.items()):
        parts = [_identifier(p) for p in label.split(".")] if "://" not in label else []
        if not parts:
            continue
        level: dict[str, Any] = roots
        owner: _Namespace | None = None
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            current = level.get(part) if owner is None else owner._children.get(part)
            if last:
                if isinstance(current, _Namespace):  # "a.b" came first: keep its children
                    for child, value in current._children.items():
                        service._child(child, value)
                current = service
            elif current is None:
                current = _Namespace(".".join(label.split(".")[: depth + 1]))
            if owner is None:
                level[part] = current
            else:
                owner._child(part, current)
            owner = current
    return {**roots, "services": dict(services), "asyncio": asyncio}


class _AsyncConsole(code.InteractiveConsole):
    """Runs each statement on ``loop``, with ``await`` allowed at the top level."""

    def __init__(self, namespace: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(namespace)
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self.loop = loop

    def runcode(self, code: types.CodeType) -> None:
        func = types.FunctionType(code, self.locals)
        future: concurrent.futures.Future[Any] | None = None
        try:
            result = func()
            if inspect.iscoroutine(result):
                future = asyncio.run_coroutine_threadsafe(result, self.loop)
                future.result()
        except SystemExit:
            raise
        except CalledServiceError as exc:  # the service's answer: no traceback of ours
            self.write(f"{type(exc).__name__}: {exc}\n")
            if exc.data is not None:
                self.write(f"data: {dumps(exc.data)}\n")
        except KeyboardInterrupt:
            if future is not None:
                future.cancel()
            self.write("KeyboardInterrupt\n")
        except BaseException:
            self.showtraceback()


def _enable_completion(namespace: dict[str, Any]) -> None:
    try:
        import readline
        import rlcompleter
    except ImportError:  # no readline on this platform: the shell works without Tab
        return
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")


def _banner(services: Mapping[str, ShellService]) -> str:
    lines = ["gemstone shell: await a method of a service, e.g."]
    example = next(
        (
            f"    await {label}.{next(iter(s._methods))}(...)"
            for label, s in services.items()
            if s._methods and "://" not in label
        ),
        "    await services['NAME'].method(...)",
    )
    lines.append(example)
    lines.append("Services (Tab completes; help(service.method) documents it; Ctrl-D exits):")
    for label, service in sorted(services.items()):
        methods = ", ".join(sorted(service._methods)) or "(not described)"
        lines.append(f"    {label} at {service.url}: {methods}")
    if not services:
        lines.append("    (none)")
    return "\n".join(lines)


def shell(
    urls: Annotated[
        list[str] | None,
        typer.Argument(
            help="Endpoints of services to add (besides the registry's).", show_default=False
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            "-r",
            envvar="GEMSTONE_REGISTRY",
            help="URL of the service registry whose services to load (or $GEMSTONE_REGISTRY).",
            show_default=False,
        ),
    ] = None,
    token: TokenOpt = None,
    token_header: TokenHeaderOpt = "X-Api-Token",
    header: HeaderOpt = None,
    bearer: BearerOpt = None,
    timeout: TimeoutOpt = 30.0,
    ssl_ca_certs: CaCertsOpt = None,
    ssl_certfile: CertfileOpt = None,
    ssl_keyfile: KeyfileOpt = None,
    no_ssl_verify: NoVerifyOpt = False,
) -> None:
    """An interactive Python shell with the services as objects, await at the top level.

    Example:
        gemstone shell --registry http://127.0.0.1:5000/api
        >>> await shop.inventory.available("apple")
    """
    if registry is None and not urls:
        fail(
            "nothing to load: pass --registry URL (or set GEMSTONE_REGISTRY) or endpoint URLs",
            ExitCode.USAGE,
        )
    for url in urls or ():
        check_url(url)
    if registry is not None:
        check_url(registry, "--registry")
    options = client_options(
        token,
        token_header,
        header,
        bearer,
        timeout,
        ssl_ca_certs=ssl_ca_certs,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        no_ssl_verify=no_ssl_verify,
    )
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="gemstone-shell-loop", daemon=True)
    runner.start()

    async def load() -> ExitCode:
        services.update(await _build(registry, list(urls or ()), options))
        return ExitCode.OK

    services: dict[str, ShellService] = {}
    try:
        run_client(_on(loop, load()), exit_on_success=False)
        namespace = _namespace(services)
        _enable_completion(namespace)
        console = _AsyncConsole(namespace, loop)
        console.interact(banner=_banner(services), exitmsg="")
    finally:
        if services:
            asyncio.run_coroutine_threadsafe(_close(services), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()
    sys.stdout.flush()


async def _close(services: Mapping[str, ShellService]) -> None:
    for service in services.values():
        await service._client.close()  # on the shell's loop, where the sessions live


async def _on(loop: asyncio.AbstractEventLoop, coro: Any) -> ExitCode:
    """Run ``coro`` on ``loop`` (the shell's own) and wait for it from here."""
    result: ExitCode = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))
    return result

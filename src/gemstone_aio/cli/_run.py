"""``gemstone run``: serve a service class, optionally restarting it when code changes."""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ._options import (
    ServeCaCertsOpt,
    ServeCertfileOpt,
    ServeCertReqsOpt,
    ServeKeyfileOpt,
    ServeKeyfilePasswordOpt,
    serve_tls_args,
)
from ._output import ExitCode, fail

__all__ = ["apply_options", "run", "serve_target"]

# Class attributes that are not settings (or not settable from a command line).
_NOT_OPTIONS = frozenset(
    {
        "name",
        "modules",
        "static_dirs",
        "extra_handlers",
        "configurables",
        "configurators",
        "event_transports",
        "validation_strategies",
        "periodic_tasks",
        "logger",
    }
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _settable(service: Any) -> dict[str, type]:
    """Public plain-valued class attributes of the service: the options ``run`` accepts."""
    found: dict[str, type] = {}
    for klass in reversed(type(service).__mro__):
        for attr, value in vars(klass).items():
            if attr.startswith("_") or attr in _NOT_OPTIONS:
                continue
            if value is None or isinstance(value, bool | int | float | str):
                found[attr] = type(value) if value is not None else str
    return found


def _convert(option: str, text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        fail(f"{option}: expected true or false, got {text!r}", ExitCode.USAGE)
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            fail(f"{option}: expected {kind.__name__}, got {text!r}", ExitCode.USAGE)
    return text


def apply_options(
    service: Any, args: Sequence[str], configurables: Collection[str] = ()
) -> list[str]:
    """Apply ``--name value`` / ``--name=value`` / ``--flag`` / ``--no-flag`` to attributes.

    Only the service's public plain-valued class attributes may be set (``--port``,
    ``--max-parallel-blocking-tasks``, a custom ``greeting = "hi"``...). Options naming
    one of ``configurables`` are not applied: they are returned, with their values, as
    the argv of the service's command-line configurator.
    """
    settable = _settable(service)
    passed: list[str] = []
    items = list(args)
    while items:
        item = items.pop(0)
        if not item.startswith("--"):
            fail(f"unexpected argument {item!r}", ExitCode.USAGE)
        key, has_value, text = item[2:].partition("=")
        attr = key.replace("-", "_")
        if attr in configurables:
            passed.append(item)
            if not has_value and items:
                passed.append(items.pop(0))
            continue
        negated = attr.startswith("no_") and settable.get(attr[3:]) is bool
        if negated:
            attr = attr[3:]
        if attr not in settable:
            names = ", ".join(
                "--" + n.replace("_", "-") for n in sorted({*settable, *configurables})
            )
            fail(
                f"unknown option --{key} for {type(service).__name__} (it takes {names})",
                ExitCode.USAGE,
            )
        kind = settable[attr]
        if negated:
            value: Any = False
        elif has_value:
            value = _convert(f"--{key}", text, kind)
        elif kind is bool and (not items or items[0].startswith("--")):
            value = True
        elif items:
            value = _convert(f"--{key}", items.pop(0), kind)
        else:
            fail(f"--{key} needs a value", ExitCode.USAGE)
        setattr(service, attr, value)
    return passed


def _configure(service: Any, extra: Sequence[str]) -> list[str]:
    """Split ``extra`` between the service's configurables and its plain attributes.

    With a service that has a ``CommandLineConfigurator``, options naming the service's
    configurables go to that configurator as its argv (it converts and checks them); the
    others set plain class attributes (:func:`apply_options`). Returns the argv for
    ``start()``.
    """
    from ..config import CommandLineConfigurator
    from ..server._configuration import effective_configurables

    configurators = getattr(service, "configurators", None) or ()
    if not any(isinstance(c, CommandLineConfigurator) for c in configurators):
        apply_options(service, extra)
        return []
    names = {c.name for c in effective_configurables(service)}
    return apply_options(service, extra, names)


def serve_target(target: str, host: str | None, port: int | None, extra: Sequence[str]) -> None:
    """Load ``target``, apply the options, and serve it until SIGINT/SIGTERM.

    Failures a user can fix (a target that cannot be loaded, a bad option, a port in
    use) exit with a one-line reason instead of a traceback.
    """
    from ..errors import ServiceConfigurationError
    from ._loader import TargetError, load_service_class

    try:
        cls = load_service_class(target)
    except TargetError as exc:
        fail(str(exc), ExitCode.USAGE)
    except Exception as exc:  # the user's module failed to import: say where, briefly
        fail(f"cannot import {target}: {type(exc).__name__}: {exc}", ExitCode.USAGE)
    try:
        service = cls()
    except ServiceConfigurationError as exc:
        fail(str(exc), ExitCode.USAGE)
    argv = _configure(service, extra)
    if host is not None:
        service.host = host
    if port is not None:
        service.port = port
    service.refresh_accessible_at()
    try:
        service.start(argv)
    except ServiceConfigurationError as exc:
        fail(str(exc), ExitCode.USAGE)
    except OSError as exc:
        fail(
            f"{service.name} cannot listen on {service.host}:{service.port}: {exc.strerror or exc}",
            ExitCode.UNREACHABLE,
        )


def run(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(help="module:Class, module, path/to/file.py or path/to/file.py:Class."),
    ],
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on.", show_default=False)
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port (0: any free port).", show_default=False)
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Worker processes sharing the port (SO_REUSEPORT), supervised.",
            show_default=False,
            min=1,
        ),
    ] = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart when a .py file changes (development only).")
    ] = False,
    reload_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--reload-dir", help="Also watch this directory (repeatable).", show_default=False
        ),
    ] = None,
    ssl_certfile: ServeCertfileOpt = None,
    ssl_keyfile: ServeKeyfileOpt = None,
    ssl_keyfile_password: ServeKeyfilePasswordOpt = None,
    ssl_ca_certs: ServeCaCertsOpt = None,
    ssl_cert_reqs: ServeCertReqsOpt = None,
) -> None:
    """Run a service class until Ctrl-C or SIGTERM.

    Other options set the service's settings, e.g. --max-parallel-blocking-tasks 8 or a
    custom attribute --greeting hi. With --ssl-certfile the service serves HTTPS (SIGHUP
    reloads the certificate).

    Example:
        gemstone run examples/hello.py:HelloWorld --port 8001 --reload
    """
    extra = [
        *serve_tls_args(
            ssl_certfile, ssl_keyfile, ssl_keyfile_password, ssl_ca_certs, ssl_cert_reqs
        ),
        *(["--worker-processes", str(workers)] if workers is not None else []),
        *ctx.args,
    ]
    if reload and workers is not None and workers > 1:
        fail(
            "--reload and --workers do not go together: reload restarts one process", ExitCode.USAGE
        )
    if not reload:
        serve_target(target, host, port, extra)
        return
    from ._loader import watch_roots
    from ._reload import supervise

    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    roots = [*watch_roots(target), *(d.resolve() for d in reload_dir or [])]
    child = [
        target,
        *(["--host", host] if host else []),
        *(["--port", str(port)] if port is not None else []),
        *extra,
    ]
    raise typer.Exit(supervise(child, roots))

"""Configurators: where configuration values come from.

A service lists its configurators in ``configurators``; they are applied **in the order
given and a later one wins** for the names it supplies. So
``[JsonFileConfigurator("svc.json"), EnvironmentConfigurator(), CommandLineConfigurator()]``
means: class defaults < the file < the environment < the command line.

A configurator answers :meth:`BaseConfigurator.get` with the *raw* value of a
configurable, or ``None`` when it has none (an empty string is a value, not "none").
The service converts raw values with the configurable's template. Configurator objects
may sit in a class attribute and be shared: each configuration run works on a private
copy (:meth:`BaseConfigurator.bind`), so two services in one process never share state.
"""

from __future__ import annotations

import abc
import argparse
import copy
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..errors import ServiceConfigurationError
from ._configurable import Configurable

__all__ = [
    "BaseConfigurator",
    "CommandLineConfigurator",
    "EnvironmentConfigurator",
    "JsonFileConfigurator",
]


class BaseConfigurator(abc.ABC):
    """A source of configuration values.

    Subclasses implement :meth:`load` (read the source once) and :meth:`get` (the raw
    value of one configurable, ``None`` when the source has none).
    """

    def __init__(self) -> None:
        self.configurables: list[Configurable] = []
        self.service_name = "service"
        self.defaults: dict[str, Any] = {}

    def register_configurable(self, configurable: Configurable) -> None:
        """Add a configurable this configurator is asked about."""
        self.configurables.append(configurable)

    def get_configurable_by_name(self, name: str) -> Configurable | None:
        """Return the registered configurable called ``name``, or ``None``."""
        for configurable in self.configurables:
            if configurable.name == name:
                return configurable
        return None

    def bind(
        self,
        configurables: Sequence[Configurable],
        *,
        service_name: str,
        defaults: Mapping[str, Any],
    ) -> BaseConfigurator:
        """Return a private copy of this configurator that knows ``configurables``.

        The service calls this on every configuration run, so a configurator object
        shared between services (or started twice) keeps no state between them.
        """
        bound = copy.copy(self)
        bound.configurables = list(configurables)
        bound.service_name = service_name
        bound.defaults = dict(defaults)
        return bound

    def describe(self, name: str) -> str:
        """Say where this configurator reads ``name`` (for error messages)."""
        return repr(self)

    @abc.abstractmethod
    def load(self) -> None:
        """Read the source (once, before any :meth:`get`)."""

    @abc.abstractmethod
    def get(self, name: str) -> Any:
        """Return the raw value of ``name``, or ``None`` when this source has none."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises instead of printing usage and exiting with 2."""

    def error(self, message: str) -> NoReturn:
        raise ServiceConfigurationError(f"{message} (see --help)")


class CommandLineConfigurator(BaseConfigurator):
    """Values from command-line options: ``--port=8001`` or ``--port 8001``.

    Every configurable is an option ``--<name>`` (names with underscores also accept
    dashes: ``--accessible-at``). ``--help`` prints the options with their current
    values and exits with status 0. An unknown option or a missing value is an error
    (:class:`~gemstone_aio.errors.ServiceConfigurationError`, a one-line message).

    Args:
        argv: The arguments to parse; ``None`` reads ``sys.argv[1:]`` when loading.
            ``MicroService.serve(argv=...)`` and ``load_configuration(argv=...)`` override it.
    """

    def __init__(self, argv: Sequence[str] | None = None) -> None:
        super().__init__()
        self.argv = None if argv is None else list(argv)
        self._parsed: dict[str, Any] = {}

    def make_parser(self) -> argparse.ArgumentParser:
        """Build the parser (one option per configurable)."""
        parser = _Parser(
            prog=os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else self.service_name,
            description=f"Run the {self.service_name} service. Options override the "
            "service's defaults (and the configurators before this one).",
            allow_abbrev=False,
        )
        for configurable in self.configurables:
            flags = [f"--{configurable.name}"]
            if "_" in configurable.name:
                flags.append(f"--{configurable.name.replace('_', '-')}")
            default = self.defaults.get(configurable.name)
            shown = "<secret>" if configurable.secret and default is not None else default
            text = configurable.help or ""
            text = f"{text} (current: {shown!r})" if text else f"current: {shown!r}"
            parser.add_argument(
                *flags,
                dest=configurable.name,
                default=None,
                metavar=configurable.name.upper(),
                help=text.replace("%", "%%"),
            )
        return parser

    def load(self) -> None:
        """Parse the arguments.

        Raises:
            ServiceConfigurationError: An unknown option, or an option without a value.
            SystemExit: ``--help`` was given (status 0, after printing the help).
        """
        argv = sys.argv[1:] if self.argv is None else self.argv
        namespace = self.make_parser().parse_args(list(argv))
        self._parsed = {k: v for k, v in vars(namespace).items() if v is not None}

    def get(self, name: str) -> Any:
        """Return the option's string, or ``None`` when it was not given."""
        return self._parsed.get(name)

    def describe(self, name: str) -> str:
        """Name the option."""
        return f"command-line option --{name}"


class JsonFileConfigurator(BaseConfigurator):
    """Values from a JSON file holding one object: ``{"port": 8001, "debug": true}``.

    JSON values reach the templates as they are (numbers, booleans, lists), so
    ``{"service_registry_urls": ["http://a/api"]}`` and ``"http://a/api,http://b/api"``
    both work. ``null`` means "no value".

    Args:
        path: The file. A missing or unreadable file, invalid JSON, a top-level value
            that is not an object, or (unless ``allow_unknown``) a key that is no
            configurable of the service stops start-up with a message naming it.
        allow_unknown: Ignore keys that are not configurables (for a file shared by
            several services).
    """

    def __init__(self, path: str | os.PathLike[str], *, allow_unknown: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.allow_unknown = allow_unknown
        self._data: dict[str, Any] = {}

    def load(self) -> None:
        """Read and check the file.

        Raises:
            ServiceConfigurationError: The file is missing, unreadable, not JSON, not an
                object, or holds an unknown key.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ServiceConfigurationError(
                f"cannot read configuration file {str(self.path)!r}: {exc.strerror or exc}"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ServiceConfigurationError(
                f"configuration file {str(self.path)!r} is not valid JSON: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(data, dict):
            raise ServiceConfigurationError(
                f"configuration file {str(self.path)!r} must hold a JSON object, "
                f"got {type(data).__name__}"
            )
        if not self.allow_unknown:
            known = {c.name for c in self.configurables}
            unknown = sorted(set(data) - known)
            if unknown:
                raise ServiceConfigurationError(
                    f"configuration file {str(self.path)!r} has unknown key(s) "
                    f"{', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
                )
        self._data = data

    def get(self, name: str) -> Any:
        """Return the key's JSON value, or ``None`` when absent or ``null``."""
        return self._data.get(name)

    def describe(self, name: str) -> str:
        """Name the file and key."""
        return f"key {name!r} of {str(self.path)!r}"

    def __repr__(self) -> str:
        return f"<JsonFileConfigurator path={str(self.path)!r}>"


def default_env_prefix(service_name: str) -> str:
    """Return the variable prefix derived from a service name (``orders.v2`` → ``ORDERS_V2_``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", service_name).strip("_").upper() + "_"


class EnvironmentConfigurator(BaseConfigurator):
    """Values from environment variables ``<PREFIX><NAME>`` (``MYSVC_PORT=8001``).

    Args:
        prefix: Put before the upper-cased configurable name. ``None`` (the default)
            derives it from the service name: ``hello_world_service`` reads
            ``HELLO_WORLD_SERVICE_PORT``. Pass ``""`` for bare names (beware of
            variables such as ``HOST`` that shells set).
        environ: The mapping to read (``os.environ`` when loading if ``None``).
    """

    def __init__(
        self, prefix: str | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.environ = environ
        self._values: dict[str, str] = {}

    def variable(self, name: str) -> str:
        """Return the environment variable read for configurable ``name``."""
        prefix = default_env_prefix(self.service_name) if self.prefix is None else self.prefix
        return f"{prefix}{name.upper()}"

    def load(self) -> None:
        """Read the variables of the registered configurables."""
        environ = os.environ if self.environ is None else self.environ
        self._values = {}
        for configurable in self.configurables:
            value = environ.get(self.variable(configurable.name))
            if value is not None:
                self._values[configurable.name] = value

    def get(self, name: str) -> Any:
        """Return the variable's string, or ``None`` when it is not set."""
        return self._values.get(name)

    def describe(self, name: str) -> str:
        """Name the variable."""
        return f"environment variable {self.variable(name)}"

    def __repr__(self) -> str:
        return f"<EnvironmentConfigurator prefix={self.prefix!r}>"

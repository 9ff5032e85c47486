"""Configuration: :class:`Configurable` values and the configurators that supply them.

The module paths of gemstone 0.10 work: ``gemstone_aio.config.configurable`` and
``gemstone_aio.config.configurator``.
"""

from __future__ import annotations

from ._configurable import (
    Configurable,
    as_bool,
    as_endpoint,
    as_float,
    as_int,
    as_port,
    comma_list,
)
from ._configurator import (
    BaseConfigurator,
    CommandLineConfigurator,
    EnvironmentConfigurator,
    JsonFileConfigurator,
)

__all__ = [
    "BaseConfigurator",
    "CommandLineConfigurator",
    "Configurable",
    "EnvironmentConfigurator",
    "JsonFileConfigurator",
    "as_bool",
    "as_endpoint",
    "as_float",
    "as_int",
    "as_port",
    "comma_list",
]

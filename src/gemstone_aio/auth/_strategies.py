"""Validation strategies: where a caller's API token is found in an HTTP request.

A strategy looks at the aiohttp request and returns the token it finds, or ``None``.
The service tries its ``validation_strategies`` in order and keeps the first token
found; ``api_token_is_valid(token)`` (by default: is the token one of ``api_tokens``?)
then decides. Strategies only *find* tokens; they never judge them.

Built in: :class:`HeaderValidationStrategy` (``X-Api-Token`` by default, or any header,
optionally with a template such as ``"Bearer {}"``) and :class:`BasicCookieStrategy`.
Write your own by subclassing :class:`BaseValidationStrategy`.
"""

from __future__ import annotations

import abc
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import ServiceConfigurationError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "BaseValidationStrategy",
    "BasicCookieStrategy",
    "HeaderValidationStrategy",
    "Template",
    "extract_token",
]

Template: TypeAlias = str | Callable[[str], "str | None"]
"""A format string with one ``{}`` (``"Bearer {}"``) or a callable mapping the raw value to the token."""

_logger = logging.getLogger("gemstone_aio.auth")


class BaseValidationStrategy(abc.ABC):
    """The base class of validation strategies.

    Subclass it and implement :meth:`extract_api_token`, sync or async::

        class QueryStringStrategy(BaseValidationStrategy):
            def extract_api_token(self, request):
                return request.query.get("token")

    and list an instance in the service's ``validation_strategies``.
    """

    @abc.abstractmethod
    def extract_api_token(self, request: web.Request) -> str | Awaitable[str | None] | None:
        """Return the token the caller sent, or ``None`` when this strategy finds none.

        May be a coroutine function. An empty string counts as "no token".

        Args:
            request: The aiohttp request of the JSON-RPC call.
        """

    def describe(self) -> str:
        """A short description for log lines (never includes a token)."""
        return type(self).__name__


class _TemplatedStrategy(BaseValidationStrategy):
    """A strategy that reads one raw value and passes it through a template."""

    def __init__(self, template: Template | None) -> None:
        self.template = template
        self._prefix = self._suffix = ""
        if isinstance(template, str):
            parts = template.split("{}")
            if len(parts) != 2:
                raise ServiceConfigurationError(
                    f"a token template must contain '{{}}' exactly once, got {template!r}"
                )
            self._prefix, self._suffix = parts
        elif template is not None and not callable(template):
            raise ServiceConfigurationError(
                f"a token template must be a format string or a callable, got {template!r}"
            )

    def apply_template(self, raw: str | None) -> str | None:
        """Turn the raw header or cookie value into the token (``None``: no token)."""
        if raw is None:
            return None
        template = self.template
        if template is None:
            token: str | None = raw.strip()
        elif isinstance(template, str):
            token = self._match(raw)
        else:
            try:
                token = template(raw)
            except Exception as exc:
                # Fail closed and say why, without the value (it may be a secret).
                _logger.warning(
                    "the token template of %s raised %s: treated as no token",
                    self.describe(),
                    type(exc).__name__,
                )
                return None
        return token or None

    def _match(self, raw: str) -> str | None:
        value = raw.strip()
        prefix, suffix = self._prefix, self._suffix
        # Authentication scheme names ("Bearer") are case-insensitive (RFC 9110 §11.1).
        if len(value) < len(prefix) + len(suffix):
            return None
        if value[: len(prefix)].lower() != prefix.lower() or not value.endswith(suffix):
            return None
        return value[len(prefix) : len(value) - len(suffix)].strip() or None


class HeaderValidationStrategy(_TemplatedStrategy):
    """Find the token in a request header (case-insensitive name).

    Args:
        header: The header's name (``X-Api-Token``).
        template: ``None`` (the whole value is the token), a format string with one
            ``{}`` marking the token (``"Bearer {}"`` for ``Authorization: Bearer abc``;
            the fixed text is matched case-insensitively) or, as in gemstone 0.9, a
            callable mapping the raw value to the token.
        header_name: The gemstone 0.9 spelling of ``header``.

    Raises:
        ServiceConfigurationError: The template is neither a string with one ``{}`` nor
            a callable.
    """

    def __init__(
        self,
        header: str = "X-Api-Token",
        template: Template | None = None,
        *,
        header_name: str | None = None,
    ) -> None:
        super().__init__(template)
        self.header = header_name if header_name is not None else header
        if not isinstance(self.header, str) or not self.header:
            raise ServiceConfigurationError(f"invalid header name: {self.header!r}")

    def extract_api_token(self, request: web.Request) -> str | None:
        """Return the token in the header, or ``None``."""
        return self.apply_template(request.headers.get(self.header))

    def describe(self) -> str:
        """Name the header (for log lines)."""
        return f"header {self.header}"

    def __repr__(self) -> str:
        return f"HeaderValidationStrategy(header={self.header!r}, template={self.template!r})"


class BasicCookieStrategy(_TemplatedStrategy):
    """Find the token in a request cookie.

    Args:
        cookie_name: The cookie's name (``AuthToken``).
        template: As for :class:`HeaderValidationStrategy`.

    Raises:
        ServiceConfigurationError: The template is invalid.
    """

    def __init__(self, cookie_name: str = "AuthToken", template: Template | None = None) -> None:
        super().__init__(template)
        if not isinstance(cookie_name, str) or not cookie_name:
            raise ServiceConfigurationError(f"invalid cookie name: {cookie_name!r}")
        self.cookie_name = cookie_name

    def extract_api_token(self, request: web.Request) -> str | None:
        """Return the token in the cookie, or ``None``."""
        return self.apply_template(request.cookies.get(self.cookie_name))

    def describe(self) -> str:
        """Name the cookie (for log lines)."""
        return f"cookie {self.cookie_name}"

    def __repr__(self) -> str:
        return f"BasicCookieStrategy(cookie_name={self.cookie_name!r}, template={self.template!r})"


async def extract_token(
    strategies: list[BaseValidationStrategy], request: web.Request
) -> tuple[str | None, BaseValidationStrategy | None]:
    """Try ``strategies`` in order; return the first token found and the strategy that found it."""
    for strategy in strategies:
        token = await _resolve(strategy.extract_api_token(request))
        if token:
            return str(token), strategy
    return None, None


async def _resolve(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value

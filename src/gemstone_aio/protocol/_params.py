"""Pydantic parameter models built from method signatures, and binding JSON-RPC params.

One :class:`ParamsBinder` is built per function and cached: the signature walk and the
model creation happen once, never per call.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NotRequired, cast

import pydantic
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from ..errors import InvalidParams, ServiceConfigurationError
from ._jsonrpc import has_non_finite

__all__ = ["MAX_REPORTED_ERRORS", "ParamsBinder", "binder_for"]

_P = inspect.Parameter
_cache: dict[Any, ParamsBinder] = {}


@dataclass(frozen=True, slots=True)
class _Slot:
    name: str  # the parameter's name, as callers send it
    field: str  # the model field holding its value
    kind: Any  # inspect.Parameter kind
    required: bool


class ParamsBinder:
    """Validates JSON-RPC params against a function's signature.

    Attributes:
        model: The pydantic model of the params: one field per parameter (aliased to the
            parameter's name), ``*args`` as a list and ``**kwargs`` as a mapping.
        slots: The parameters in signature order.
        result_annotation: The function's return annotation (``inspect.Parameter.empty``
            when there is none).
    """

    __slots__ = (
        "_check_finite",
        "_kwargs_validator",
        "_named",
        "_positional",
        "_validate",
        "_var_kw",
        "_var_pos",
        "model",
        "result_annotation",
        "slots",
    )

    def __init__(self, func: Callable[..., Any], *, skip_first: bool = False) -> None:
        qualname = getattr(func, "__qualname__", repr(func))
        try:
            signature = inspect.signature(func, eval_str=True)
        except NameError as exc:
            raise ServiceConfigurationError(
                f"cannot resolve the annotations of {qualname}: {exc}"
            ) from None
        parameters = list(signature.parameters.values())
        if skip_first:
            if not parameters or parameters[0].kind not in (
                _P.POSITIONAL_ONLY,
                _P.POSITIONAL_OR_KEYWORD,
            ):
                raise ServiceConfigurationError(
                    f"{qualname} requires a handler reference but takes no positional "
                    "parameter to receive it"
                )
            parameters = parameters[1:]
        fields: dict[str, Any] = {}
        slots: list[_Slot] = []
        self._var_pos: _Slot | None = None
        self._var_kw: _Slot | None = None
        for index, param in enumerate(parameters):
            annotation = Any if param.annotation is _P.empty else param.annotation
            field_name = f"p{index}"
            if param.kind is _P.VAR_POSITIONAL:
                slot = _Slot(param.name, field_name, param.kind, False)
                fields[field_name] = (
                    list[annotation],  # type: ignore[valid-type]
                    Field(default_factory=list, alias=f"*{param.name}"),
                )
                self._var_pos = slot
            elif param.kind is _P.VAR_KEYWORD:
                slot = _Slot(param.name, field_name, param.kind, False)
                fields[field_name] = (
                    dict[str, annotation],  # type: ignore[valid-type]
                    Field(default_factory=dict, alias=f"**{param.name}"),
                )
                self._var_kw = slot
            else:
                required = param.default is _P.empty
                default: Any = ... if required else param.default
                slot = _Slot(param.name, field_name, param.kind, required)
                fields[field_name] = (annotation, Field(default, alias=param.name))
            slots.append(slot)
        self.slots: Final = tuple(slots)
        self._positional = tuple(
            s.name for s in slots if s.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
        )
        self.result_annotation: Final = signature.return_annotation
        model_name = qualname.replace(".", "_").replace("<", "").replace(">", "") + "_params"
        try:
            self.model: Final[type[BaseModel]] = pydantic.create_model(
                model_name,
                __config__=_CONFIG,
                **fields,
            )
        except (
            pydantic.PydanticSchemaGenerationError,
            pydantic.PydanticUserError,
            TypeError,
        ) as exc:
            raise ServiceConfigurationError(
                f"cannot build a params model for {qualname}: {exc}"
            ) from None
        # Work done once instead of per call: for the usual signature (named parameters
        # only), the (parameter, field) pairs that make the keyword arguments.
        self._validate: Callable[[Any], BaseModel] = self.model.model_validate
        self._named: tuple[tuple[str, str], ...] | None = (
            tuple((s.name, s.field) for s in slots)
            if all(s.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY) for s in slots)
            else None
        )
        # For those named-parameters-only signatures, a second validator over a TypedDict
        # of the same annotations returns the keyword arguments themselves: no model
        # instance, no renaming, about a third of the cost. Parameters with a default are
        # optional keys, so an omitted one takes the function's own default. The model
        # stays the reference (JSON Schema, the other signatures).
        # Floats annotated as such refuse infinity and NaN themselves (the config's
        # allow_inf_nan); values of any other annotation (Any, models, containers) are
        # looked at before they are bound.
        self._check_finite = not all(_finite_by_annotation(p.annotation) for p in parameters)
        self._kwargs_validator: Callable[[Any], dict[str, Any]] | None = (
            _kwargs_validator(model_name, parameters) if self._named is not None else None
        )

    @property
    def positional_names(self) -> tuple[str, ...]:
        """Names of the parameters that may be given by position, in order."""
        return self._positional

    def bind(self, params: list[Any] | dict[str, Any] | None) -> tuple[list[Any], dict[str, Any]]:
        """Validate ``params`` and return the ``(args, kwargs)`` to call the function with.

        Raises:
            InvalidParams: The params do not fit; ``data`` is pydantic's error list (at
                most :data:`MAX_REPORTED_ERRORS` entries, then one that gives the total).
        """
        if params.__class__ is dict and self._var_kw is None and len(params) > len(self.slots):
            # More names than parameters: some are unknown. Refuse before any per-name
            # work, naming a few of them (a hostile body can hold thousands).
            raise _unknown_names(params, self.slots)
        if self._check_finite and params is not None and has_non_finite(params):
            raise InvalidParams(data=[_NOT_FINITE])
        pairs = self._named
        if pairs is not None and isinstance(params, dict):
            # The usual case, with nothing to rearrange: validate the params as they are.
            try:
                if self._kwargs_validator is not None:
                    return [], self._kwargs_validator(params)
                values = self._validate(params).__dict__
            except pydantic.ValidationError as exc:
                # A "*name" key cannot be a field here, so it is among the errors; it is
                # reported alone, as in the general path below.
                _refuse_starred(params)
                raise _invalid(exc) from None
            return [], {name: values[field] for name, field in pairs}
        data: dict[str, Any]
        if params is None:
            data = {}
        elif isinstance(params, list):
            count = len(self._positional)
            if len(params) > count and self._var_pos is None:
                raise InvalidParams(
                    data=[
                        {
                            "type": "too_many_positional_params",
                            "loc": [],
                            "msg": f"takes at most {count} positional params, {len(params)} given",
                        }
                    ]
                )
            data = dict(zip(self._positional, params, strict=False))
            if self._kwargs_validator is not None:
                try:
                    return [], self._kwargs_validator(data)
                except pydantic.ValidationError as exc:
                    raise _invalid(exc) from None
            if self._var_pos is not None:
                data[f"*{self._var_pos.name}"] = params[count:]
        else:
            _refuse_starred(params)
            if self._var_kw is None:
                data = params
            else:
                named = {s.name for s in self.slots if s.kind is not _P.VAR_KEYWORD}
                data = {k: v for k, v in params.items() if k in named}
                data[f"**{self._var_kw.name}"] = {k: v for k, v in params.items() if k not in named}
        try:
            values = self._validate(data).__dict__
        except pydantic.ValidationError as exc:
            raise _invalid(exc) from None
        if pairs is not None:
            return [], {name: values[field] for name, field in pairs}
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for slot in self.slots:
            value = values[slot.field]
            if slot.kind is _P.POSITIONAL_ONLY:
                args.append(value)
            elif slot.kind is _P.VAR_POSITIONAL:
                # Everything before *args must then go by position too.
                args.extend(kwargs.pop(s.name) for s in self.slots if s.name in kwargs)
                args.extend(value)
            elif slot.kind is _P.VAR_KEYWORD:
                kwargs.update(value)
            else:
                kwargs[slot.name] = value
        return args, kwargs


def _kwargs_validator(
    name: str, parameters: list[inspect.Parameter]
) -> Callable[[Any], dict[str, Any]] | None:
    """Return a validator turning params by name into keyword arguments, or None.

    ``None`` when pydantic cannot build it here; the model then does the work.
    """
    items: dict[str, Any] = {}
    for param in parameters:
        annotation = Any if param.annotation is _P.empty else param.annotation
        items[param.name] = annotation if param.default is _P.empty else NotRequired[annotation]
    try:
        typed_dict: Any = pydantic.with_config(_CONFIG)(cast(Any, TypedDict)(name, items))
        validator = pydantic.TypeAdapter(typed_dict).validator
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        return None
    if not isinstance(validator, pydantic_core.SchemaValidator):
        return None  # not complete (a forward reference pydantic could not resolve yet)
    return validator.validate_python


def _refuse_starred(params: dict[str, Any]) -> None:
    # "*args" / "**kwargs" are the aliases of the variadic fields: callers may not use them.
    for key in params:
        if key.startswith("*"):
            raise InvalidParams(
                data=[
                    {
                        "type": "extra_forbidden",
                        "loc": [key],
                        "msg": "Extra inputs are not permitted",
                    }
                ]
            )


_CONFIG: Final = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

# Annotations whose validation alone keeps infinity and NaN out (with _CONFIG).
_FINITE_TYPES: Final = frozenset({str, int, bool, float, bytes, type(None)})

_NOT_FINITE: Final = {
    "type": "finite_number",
    "loc": [],
    "msg": "numbers must be finite (one is too large for a float)",
}


def _finite_by_annotation(annotation: Any) -> bool:
    if annotation in _FINITE_TYPES:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_finite_by_annotation(arg) for arg in typing.get_args(annotation))
    return False


MAX_REPORTED_ERRORS: Final = 20
"""Validation errors listed in an invalid-params answer; one more entry gives the total."""

_MAX_NAME_LENGTH: Final = 64
_ERRORS_HEAD_CHARS: Final = 16 * 1024


def _with_total(errors: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    if total <= MAX_REPORTED_ERRORS:
        return errors
    return [
        *errors[:MAX_REPORTED_ERRORS],
        {
            "type": "too_many_errors",
            "loc": [],
            "msg": f"{MAX_REPORTED_ERRORS} of {total} errors shown",
        },
    ]


def _unknown_names(params: dict[str, Any], slots: tuple[_Slot, ...]) -> InvalidParams:
    known = {slot.name for slot in slots}
    unknown = [name for name in params if name not in known]
    shown = [
        {
            "type": "extra_forbidden",
            "loc": [name[:_MAX_NAME_LENGTH]],
            "msg": "Extra inputs are not permitted",
        }
        for name in unknown[:MAX_REPORTED_ERRORS]
    ]
    return InvalidParams(data=_with_total(shown, len(unknown)))


def _invalid(exc: pydantic.ValidationError) -> InvalidParams:
    total = exc.error_count()
    if total <= MAX_REPORTED_ERRORS:
        errors = exc.errors(include_url=False, include_input=False)
        shown = pydantic_core.to_jsonable_python(errors, fallback=str)
    else:
        # errors() would build a Python object per error (80,000 of them for a hostile
        # list); pydantic-core writes them as JSON in a fraction of the time, and only the
        # head of that text is decoded.
        text = exc.json(include_url=False, include_input=False)
        head = pydantic_core.from_json(text[:_ERRORS_HEAD_CHARS], allow_partial=True)
        shown = [e for e in head[:MAX_REPORTED_ERRORS] if {"type", "loc", "msg"} <= e.keys()]
    return InvalidParams(data=_with_total(shown, total))


def binder_for(func: Callable[..., Any], *, skip_first: bool = False) -> ParamsBinder:
    """Return the cached :class:`ParamsBinder` of ``func`` (bound methods share their function's)."""
    key = (getattr(func, "__func__", func), skip_first)
    binder = _cache.get(key)
    if binder is None:
        binder = _cache[key] = ParamsBinder(func, skip_first=skip_first)
    return binder

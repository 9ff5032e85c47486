"""Observability: health and readiness, metrics, statistics, request ids, tracing.

See ``docs/observability.md``. The server wires
these into every application; the names below are for components and users that
report into it (readiness checks, metrics hooks, trace propagation, log formatting).
"""

from __future__ import annotations

from ._health import READINESS_KEY, CheckResult, ReadinessCheck, add_readiness_check
from ._logs import (
    JsonFormatter,
    RequestIdFilter,
    configure_logging,
    current_request_id,
)
from ._metrics import EVENT_OUTCOMES, MetricsHooks, metrics_available
from ._statistics import STATISTICS_METHOD, CallStatistics
from ._tracing import current_tracer, extract_context, inject_context, start_span, tracing_available

__all__ = [
    "EVENT_OUTCOMES",
    "READINESS_KEY",
    "STATISTICS_METHOD",
    "CallStatistics",
    "CheckResult",
    "JsonFormatter",
    "MetricsHooks",
    "ReadinessCheck",
    "RequestIdFilter",
    "add_readiness_check",
    "configure_logging",
    "current_request_id",
    "current_tracer",
    "extract_context",
    "inject_context",
    "metrics_available",
    "start_span",
    "tracing_available",
]

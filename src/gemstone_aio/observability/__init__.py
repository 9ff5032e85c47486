"""Observability: health and readiness, metrics, statistics, request ids, tracing.

See ``docs/observability.md``. The application factory calls
:func:`install_observability`; the names below are for components and users that
report into it (readiness checks, metrics hooks, trace propagation, log formatting).
"""

from __future__ import annotations

from .health import READINESS_KEY, CheckResult, ReadinessCheck, add_readiness_check
from .logs import (
    JsonFormatter,
    RequestIdFilter,
    configure_logging,
    current_request_id,
    request_id_var,
)
from .metrics import EVENT_OUTCOMES, MetricsHooks, metrics_available
from .statistics import STATISTICS_METHOD, CallStatistics
from .tracing import current_tracer, extract_context, inject_context, start_span, tracing_available
from .wiring import METRICS_KEY, install_observability

__all__ = [
    "EVENT_OUTCOMES",
    "METRICS_KEY",
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
    "install_observability",
    "metrics_available",
    "request_id_var",
    "start_span",
    "tracing_available",
]

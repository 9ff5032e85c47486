"""A service people can watch: probes, metrics, statistics, request ids, JSON logs.

Run it with ``python examples/observability_service.py`` (metrics need the ``metrics``
extra), then::

    curl http://127.0.0.1:8000/health
    curl http://127.0.0.1:8000/ready
    curl -H "X-Request-Id: order-42" -H "Content-Type: application/json" \
        -d '{"jsonrpc": "2.0", "method": "take", "params": ["apple"], "id": 1}' \
        http://127.0.0.1:8000/api
    curl http://127.0.0.1:8000/metrics
"""

from __future__ import annotations

from aiohttp import web

import gemstone_aio as gemstone
from gemstone_aio.observability import CheckResult, add_readiness_check, current_request_id


class Inventory(gemstone.MicroService):
    name = "inventory"
    use_statistics = True  # adds the gemstone 0.10 `statistics` method
    use_metrics = None  # the default: /metrics when prometheus-client is installed
    log_json = True  # start() writes one JSON object per log line
    # use_tracing = True  # with the `tracing` extra: a span per call

    def __init__(self) -> None:
        super().__init__()
        self.stock = {"apple": 3, "pear": 0}
        self.database_up = True

    @gemstone.exposed_method()
    async def take(self, item: str) -> int:
        """Take one item out of stock and return how many are left."""
        self.logger.info("taking %s for request %s", item, current_request_id())
        if self.stock.get(item, 0) <= 0:
            raise gemstone.InvalidParams(data=f"no {item!r} left")
        self.stock[item] -= 1
        return self.stock[item]

    async def database_check(self) -> CheckResult:
        """Readiness: the service is ready while its database answers."""
        return CheckResult("database", self.database_up, None if self.database_up else "down")

    def make_app(self) -> web.Application:
        app = super().make_app()
        add_readiness_check(app, self.database_check)
        return app


if __name__ == "__main__":
    Inventory().start()

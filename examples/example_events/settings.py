"""Where the examples find RabbitMQ: ``GEMSTONE_AMQP_URL`` or a local default broker."""

from __future__ import annotations

import os

AMQP_URL = os.environ.get("GEMSTONE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

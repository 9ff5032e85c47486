"""Coordination between the instances of a service: leases and once-per-cluster tasks.

See ``docs/lifecycle.md`` (periodic tasks) and ``docs/resilience.md``.
"""

from ._lease import BaseLeaseStore, RedisLeaseStore
from ._once import OncePerCluster, once_per_cluster

__all__ = ["BaseLeaseStore", "OncePerCluster", "RedisLeaseStore", "once_per_cluster"]

"""Real servers started on 127.0.0.1 with free ports, for tests, benchmarks and the demo.

Each launcher is a context manager that starts the Debian-packaged server in a temporary
directory and stops it on exit. Nothing here is used in production deployments.
"""

from linli.services.base import ServiceError, ServiceUnavailable, free_port
from linli.services.mosquitto import Mosquitto
from linli.services.postgres import Postgres
from linli.services.victoria import VictoriaMetrics

__all__ = [
    "Mosquitto",
    "Postgres",
    "ServiceError",
    "ServiceUnavailable",
    "VictoriaMetrics",
    "free_port",
]

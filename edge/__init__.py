"""The Linli edge agent: drivers → reporting → local rules → outbox → uplink (see edge.agent)."""

__version__ = "0.1.0"

"""Imports every module that defines tables, so the schema is complete wherever it is built.

Each area adds its own line here (and only here) when it adds a table module.
"""
import cloud.alerts.tables
import cloud.auth.tables  # noqa: F401  (accounts: users, sessions, audit log)
import cloud.faces.tables  # noqa: F401  (faces: persons, encodings, consent, versions, erasures)
import cloud.registry.tables  # noqa: F401  (registry: sites, places, gateways, devices)
import cloud.storage.tables  # noqa: F401  (ingest: messages, readings, events, dead letters, gaps)
import dashboards.tables  # noqa: F401  (dashboards: visitor passes)

"""Imports every module that defines tables, so the schema is complete wherever it is built.

Each area adds its own line here (and only here) when it adds a table module.
"""

import cloud.alerts.tables  # noqa: F401  (alerts: alerts, alert_events, notifications)
import cloud.auth.tables  # noqa: F401  (accounts: users, sessions, audit log)
import cloud.commands.tables  # noqa: F401  (commands sent and their acks)
import cloud.faces.tables  # noqa: F401  (faces: persons, encodings, consent, versions, erasures)
import cloud.registry.tables  # noqa: F401  (registry: sites, places, gateways, devices)
import cloud.rules.tables  # noqa: F401  (rules: gateway configs, saved rule state)
import cloud.storage.tables  # noqa: F401  (ingest: messages, readings, events, dead letters, gaps)
import dashboards.tables  # noqa: F401  (dashboards: visitor passes)

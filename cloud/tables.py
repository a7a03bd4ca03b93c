"""Imports every module that defines tables, so the schema is complete wherever it is built.

Each area adds its own line here (and only here) when it adds a table module.
"""

import cloud.alerts.tables  # alerts: alerts, alert_events, notifications
import cloud.auth.tables  # accounts: users, sessions, audit log
import cloud.commands.tables  # commands sent and their acks
import cloud.faces.tables  # faces: persons, encodings, consent, versions, erasures
import cloud.gate.tables  # gate: visitor pass uses
import cloud.governance.tables  # governance: organisations, catalogue, incidents, whistles
import cloud.registry.tables  # registry: sites, places, gateways, devices
import cloud.risk.tables  # risk: register, residents, welfare checks, drills
import cloud.rules.tables  # rules: gateway configs, saved rule state
import cloud.signals  # signals: change counters between processes (SQLite)
import cloud.storage.tables  # noqa: F401  (ingest: messages, readings, events, dead letters, gaps)
import dashboards.tables  # noqa: F401  (dashboards: visitor passes)

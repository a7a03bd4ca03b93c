"""Alerts: one active alert per (site, rule, subject), a human workflow, escalation, audit trail.

``states`` is the pure workflow, ``tables`` the SQLAlchemy rows, ``service`` the operations
(raise, clear, transitions, comments, escalation) on a session.
"""

"""Risk governance: the risk register, lifecycle phases, residents and welfare checks, drills,
after-action reports and the residents' committee statistics (routes under ``/api/gov/``).

Incidents, organisations and whistles belong to :mod:`cloud.governance`; this package reads them
through its service API and opens welfare incidents with it.
"""

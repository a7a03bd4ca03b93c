"""Accounts, roles, sessions and the audit log.

``cloud.auth.deps`` holds what every router uses (:class:`Role`, :class:`Principal`,
:func:`require_roles`); ``cloud.auth.router`` the login/user/audit routes; ``cloud.auth.service``
the functions behind them (also used by ``linli cloud create-admin``).
"""

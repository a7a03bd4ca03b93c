"""Telling people: webhook, e-mail and in-app channels, the whistle, and the live stream hub.

:class:`~cloud.notify.dispatcher.Notifier` takes notices off the hot path (a bounded queue and a
worker with retries) so a slow mail server never delays rule evaluation.
"""

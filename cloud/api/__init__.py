"""The HTTP/WebSocket API: ``create_app(settings)``, one router per resource."""

from cloud.api.app import create_app

__all__ = ["create_app"]

"""Commands to gateways: rule actions and manual ones, published on ``cmd`` with an expiry,
matched with the gateway's :class:`~protocols.messages.CommandAck`."""

"""One router per resource. Every route carries a role check (``cloud.auth.deps``)."""

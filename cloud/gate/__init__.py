"""Cloud side of the gate: keeping every gateway's gallery and visitor passes in sync."""

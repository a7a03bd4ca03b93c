"""The cloud rules runner: stored messages → the shared rule evaluator → alerts, commands,
notifications. The evaluator itself is :mod:`protocols.rules` (the same one the edge runs)."""

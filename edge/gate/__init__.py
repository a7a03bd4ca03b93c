"""Access control at the gate: capture → faces → tracker/vote → liveness → door policy → events.

Pure cores (``policy``, ``alarms``, ``matching``, ``liveness``, ``tracker``, ``bundle``) import no
camera or dlib code; ``faces``, ``capture`` and ``pipeline`` hold the I/O and the models.
"""

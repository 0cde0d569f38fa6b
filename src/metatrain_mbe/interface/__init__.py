"""Layer 4 — what users touch: the ``mtt-mbe`` CLI, options and reports."""

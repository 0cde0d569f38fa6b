"""Layer 3 — evaluating models and reference codes on sub-clusters."""

"""Costs of an architecture: MACs and parameters (fvcore), latency (tables or measured)."""

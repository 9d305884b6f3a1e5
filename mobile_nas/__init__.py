"""mobile-nas: multi-objective, mobile-oriented neural architecture search."""

__version__ = "0.1.0"

"""Datasets and training loops."""

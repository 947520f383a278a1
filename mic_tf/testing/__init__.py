"""Test helpers shipped with the package (synthetic data for fast checks)."""

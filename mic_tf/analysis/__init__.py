"""Analyses of trained models (representation geometry, paper Figure 4)."""

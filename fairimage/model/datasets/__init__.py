"""Datasets for machine learning: splits that never leak a group, and the checks that prove it."""

"""Datasets for machine learning: leak-free splits of studies' images and labels, their checks and cards."""

"""Trained models: registered from bioimage.io packages or model cards, linked to dataset versions."""

"""Quality control of images, plates and datasets: per-plane measures, robust outliers against peers,
plate statistics with controls, and dataset rules. Pure functions on numpy planes and plain data."""

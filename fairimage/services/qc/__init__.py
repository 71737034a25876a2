"""Quality control: measures and flags of images, plates and datasets, kept as reports."""

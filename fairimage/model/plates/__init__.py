"""High-content screening: plate layouts, platemaps and what quality control measures."""

"""Viewing: rendered pictures of stored images, Deep Zoom tiles and IIIF."""

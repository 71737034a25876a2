"""How pixels become pictures: render settings, Deep Zoom geometry, IIIF requests."""

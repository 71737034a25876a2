"""OME-Zarr (OME-NGFF): metadata per spec version, the streaming pyramid writer."""

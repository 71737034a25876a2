"""fairimage: turn a lab's raw images into FAIR OME-Zarr data and serve them to standard clients."""

__version__ = "0.1.0"

"""Label images of images: segmentation masks and instance labels, stored as OME-NGFF labels."""

"""Ingest: files, folders, DICOM series and PACS pulls in; checksummed OME-Zarr images out."""

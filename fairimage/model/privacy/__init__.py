"""De-identification rules of DICOM PS3.15 and the PHI scanner."""

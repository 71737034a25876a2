"""Privacy: DICOM de-identification and the PHI scanner as the services use them."""

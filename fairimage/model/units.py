"""Physical units: normalise the spellings found in files to the UDUNITS-2 names OME-NGFF requires."""

from __future__ import annotations

# OME-NGFF 0.5, "axes": units SHOULD be UDUNITS-2 names. OME-XML and ImageJ use symbols; map both.
_SPACE = {
    "angstrom": "angstrom",
    "å": "angstrom",
    "Å": "angstrom",
    "nm": "nanometer",
    "nanometer": "nanometer",
    "nanometre": "nanometer",
    "µm": "micrometer",
    "μm": "micrometer",
    "um": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "micrometer": "micrometer",
    "micrometre": "micrometer",
    "\\u00b5m": "micrometer",
    "mm": "millimeter",
    "millimeter": "millimeter",
    "millimetre": "millimeter",
    "cm": "centimeter",
    "centimeter": "centimeter",
    "m": "meter",
    "meter": "meter",
    "metre": "meter",
    "pm": "picometer",
    "picometer": "picometer",
    "inch": "inch",
    "in": "inch",
}
_TIME = {
    "s": "second",
    "sec": "second",
    "second": "second",
    "seconds": "second",
    "ms": "millisecond",
    "millisecond": "millisecond",
    "µs": "microsecond",
    "us": "microsecond",
    "microsecond": "microsecond",
    "ns": "nanosecond",
    "nanosecond": "nanosecond",
    "min": "minute",
    "minute": "minute",
    "h": "hour",
    "hour": "hour",
    "d": "day",
    "day": "day",
}


def space_unit(symbol: str | None) -> str | None:
    """The UDUNITS-2 name of a length unit, or None when the file names no (known) unit."""
    if not symbol:
        return None
    return _SPACE.get(symbol.strip()) or _SPACE.get(symbol.strip().lower())


def time_unit(symbol: str | None) -> str | None:
    """The UDUNITS-2 name of a time unit, or None when the file names no (known) unit."""
    if not symbol:
        return None
    return _TIME.get(symbol.strip()) or _TIME.get(symbol.strip().lower())

"""Physical units: normalise the spellings found in files to the UDUNITS-2 names OME-NGFF requires."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fairimage.model.errors import InvalidInputError

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


# Metres per unit of the lengths above, to express sizes given in different units in one.
_METRES = {
    "picometer": 1e-12,
    "angstrom": 1e-10,
    "nanometer": 1e-9,
    "micrometer": 1e-6,
    "millimeter": 1e-3,
    "centimeter": 1e-2,
    "meter": 1.0,
    "inch": 0.0254,
}
_LENGTH = re.compile(r"^\s*(?P<value>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?P<unit>[^\s0-9.].*?)\s*$")


@dataclass(frozen=True)
class Length:
    """A physical length as a user wrote it: ``30nm`` is 30.0 nanometer."""

    value: float
    unit: str  # a UDUNITS-2 name

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"


def parse_length(text: str, what: str) -> Length:
    """``30nm``, ``0.5 µm``, ``2um`` as a Length; InvalidInputError naming ``what`` (the option) otherwise."""
    found = _LENGTH.match(text)
    unit = space_unit(found.group("unit")) if found else None
    if found is None or unit is None or float(found.group("value")) <= 0:
        raise InvalidInputError(
            f"{what} {text!r}: give a positive length with its unit, e.g. 30nm, 0.5um or 1.2mm"
        )
    return Length(float(found.group("value")), unit)


def convert_length(value: float, unit: str, into: str) -> float:
    """``value`` ``unit`` expressed in ``into`` (both UDUNITS-2 length names), to 12 significant digits so
    that 0.004 micrometer is 4 nanometer, not 3.9999999999999996."""
    if unit == into:
        return value
    return float(f"{value * _METRES[unit] / _METRES[into]:.12g}")

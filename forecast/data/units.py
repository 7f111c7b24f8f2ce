"""Units of a variable: read from the files, compared across them, converted where a linear rule exists.

A small table rather than UDUNITS: the conversions that real archives mix (°C and K, mm and m, hPa and Pa,
km/h and m/s) are linear, and anything else is a mismatch the user must resolve, not a guess.
"""

from __future__ import annotations

import re

from forecast.errors import DataError

# spelling (lower case, no spaces) -> (dimension, scale, offset): value in the dimension's base unit is
# value * scale + offset.
_UNITS: dict[str, tuple[str, float, float]] = {}


def _define(dimension: str, scale: float, offset: float, *spellings: str) -> None:
    for spelling in spellings:
        _UNITS[spelling] = (dimension, scale, offset)


_define("temperature", 1.0, 0.0, "k", "kelvin", "degk", "deg_k", "degreek", "degrees_k", "degree_kelvin")
_define("temperature", 1.0, 273.15, "degc", "deg_c", "°c", "celsius", "degreec", "degree_c", "degrees_c",
        "degrees_celsius", "degree_celsius", "c")
_define("length", 1.0, 0.0, "m", "meter", "meters", "metre", "metres")
_define("length", 1e-3, 0.0, "mm", "millimeter", "millimeters", "millimetre", "millimetres")
_define("length", 1e-2, 0.0, "cm", "centimeter", "centimeters", "centimetre", "centimetres")
_define("length", 1e3, 0.0, "km", "kilometer", "kilometers", "kilometre", "kilometres")
_define("pressure", 1.0, 0.0, "pa", "pascal", "pascals")
_define("pressure", 100.0, 0.0, "hpa", "mbar", "mb", "millibar", "millibars")
_define("pressure", 1000.0, 0.0, "kpa")
_define("speed", 1.0, 0.0, "ms-1", "m/s", "ms^-1", "m.s-1", "meter/second", "m s**-1")
_define("speed", 1 / 3.6, 0.0, "kmh-1", "km/h", "km.h-1")
_define("speed", 0.514444, 0.0, "knot", "knots", "kt", "kn")


def _key(units: str) -> str:
    return re.sub(r"\s+", "", units.strip().lower())


def same_units(a: str, b: str) -> bool:
    """Equal after normalising case and spaces (``m s-1`` and ``m  s-1``), or the same entry of the table."""
    if _key(a) == _key(b):
        return True
    ka, kb = _UNITS.get(_key(a)), _UNITS.get(_key(b))
    return ka is not None and ka == kb


def conversion(source: str, target: str, what: str) -> tuple[float, float] | None:
    """``(scale, offset)`` turning values in ``source`` units into ``target`` units (None: nothing to do).

    ``DataError`` starting with ``what`` (which file and variable against which) when they are not convertible.
    """
    if same_units(source, target):
        return None
    a, b = _UNITS.get(_key(source)), _UNITS.get(_key(target))
    if a is None or b is None or a[0] != b[0]:
        raise DataError(f"{what}: '{source or 'no units'}' cannot be converted to '{target or 'no units'}'; "
                        "convert the files to one unit, or prepare them separately.")
    # to base: v * a1 + a2; from base: (v - b2) / b1
    return a[1] / b[1], (a[2] - b[2]) / b[1]

"""Floats as TF Serving writes them in JSON (tensorflow_serving/util/json_tensor.cc,
WriteDecimal): the shortest %g that parses back to the same value, else 9 (float32) or
17 (float64) significant digits; whole numbers keep a trailing ".0"; NaN and the
infinities as the words JavaScript uses.
"""

from __future__ import annotations

import math

import numpy as np


def float_token(value: float, dtype: np.dtype) -> str:
    if not math.isfinite(value):
        return "NaN" if value != value else ("-Infinity" if value < 0 else "Infinity")
    token = f"{value:g}"
    if dtype.type(float(token)) != value:
        token = f"{value:.{9 if dtype == np.float32 else 17}g}"
    return token if ("." in token or "e" in token) else token + ".0"


def float_tokens(flat: np.ndarray) -> list[str]:
    """Floats as TF Serving's WriteDecimal prints them.

    Whole arrays are formatted with one %-operation: formatting value by value in Python
    cost more than the model call. Which values need the long form is decided up front
    (for float32 in numpy arithmetic, see short_float32), so only one form is printed.
    """
    if flat.size == 0:
        return []
    if flat.size <= 4:  # e.g. one threshold per row: numpy's fixed cost would dominate
        return [float_token(v, flat.dtype) for v in flat.tolist()]
    values = tuple(flat.tolist())
    long_form = f"%.{9 if flat.dtype == np.float32 else 17}g"
    if flat.dtype == np.float32:
        short = short_float32(flat)
    else:
        parsed = np.fromstring(",".join(["%g"] * len(values)) % values, np.float64, sep=",")
        short = parsed.astype(flat.dtype) == flat
    finite = np.isfinite(flat)
    # Print everything in the more common form, then redo the others one by one.
    if 2 * np.count_nonzero(short) >= flat.size:
        common, other, redo = "%g", long_form, ~short & finite
    else:
        common, other, redo = long_form, "%g", short & finite
    tokens = (",".join([common] * len(values)) % values).split(",")
    for i in np.flatnonzero(redo).tolist():
        tokens[i] = other % values[i]
    for i in np.flatnonzero(finite & (np.floor(flat) == flat)).tolist():
        if "." not in tokens[i] and "e" not in tokens[i]:
            tokens[i] += ".0"  # whole numbers keep a decimal point
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            v = values[i]
            tokens[i] = "NaN" if v != v else ("-Infinity" if v < 0 else "Infinity")
    return tokens


_POW10 = 10.0 ** np.arange(-60, 61)  # _POW10[60 + k] == 10.0**k
_LOG10_2 = math.log10(2)
_DROPPED = (1 << 29) - 1  # the float64 mantissa bits a cast to float32 drops
_MIDPOINT = 1 << 28  # those bits' value halfway between two float32s
_SMALLEST_NORMAL32 = float(np.finfo(np.float32).tiny)


def short_float32(flat: np.ndarray) -> np.ndarray:
    """Which float32 values %g (6 significant digits) prints so that they parse back.

    TF Serving prints %g, parses it, and falls back to %.9g when the value changed.
    Printing and parsing every value costs about as much as the model call, so this
    rounds to 6 digits in float64 instead. That arithmetic is off by a few float64 ulps
    at most, so it decides every value except those that close to a rounding boundary
    (a tie at the 6th digit, a float32 midpoint, or subnormals): those few are printed
    and parsed. tests/test_json_codec.py checks it against printing and parsing.
    """
    a = np.abs(flat).astype(np.float64)
    ordinary = np.isfinite(a) & (a > 0)
    a = np.where(ordinary, a, 1.0)
    exponent = np.floor((np.frexp(a)[1] - 1) * _LOG10_2).astype(np.int64)  # or 1 below
    exponent += a >= _POW10[61 + exponent]  # now floor(log10(a))
    scale = _POW10[65 - exponent]  # 10 ** (5 - exponent)
    scaled = a * scale
    digits = np.rint(scaled)
    decimal = digits / scale
    short = decimal.astype(np.float32) == a.astype(np.float32)
    dropped = (decimal.view(np.uint64) & _DROPPED).astype(np.int64)
    unsure = (np.abs(scaled - digits) > 0.5 - 1e-6) | (np.abs(dropped - _MIDPOINT) <= 16)
    unsure |= a < _SMALLEST_NORMAL32
    short[~ordinary] = True  # zeros print as 0; NaN and infinities have their own words
    for i in np.flatnonzero(unsure & ordinary).tolist():
        value = flat[i]
        short[i] = np.float32(float(f"{float(value):g}")) == value
    return short

"""How a recipe's bounds are written for Data-Juicer, and read back, so that both keep the same samples."""

from __future__ import annotations

import decimal
import math
from fractions import Fraction
from typing import Literal

from pandas.io.json import ujson_dumps

from mlsandbox.ops import StatArgs

#: Data-Juicer keeps each sample's statistics in a JSON column (Hugging Face datasets' ``Json``
#: feature), written by pandas' ujson with this many decimals (this many significant digits above
#: 1e16 and below 1e-15) and read back by ujson's parser, which can be a float or two off; its
#: filters compare that stored value, not the statistic, with a bound.
STORED_DIGITS = 10


def data_juicer_bound(value: float, side: Literal["min", "max"], sa: StatArgs) -> float | int | str:
    """A condition's bound as the Data-Juicer argument that keeps the same samples: a count rounded
    inward, a fractional bound half a stored step out (:func:`stored_bound`), as a decimal string
    where Data-Juicer reads the text as an exact fraction."""
    if sa.integer:
        # Data-Juicer types count bounds as int; rounding inward keeps the same integer stats.
        return math.ceil(value) if side == "min" else math.floor(value)
    bound = decimal.Decimal(value) if at_limit(sa, value, side) else stored_bound(float(value), side)
    # Data-Juicer reads a fraction's text exactly (Fraction(text)), a float's as the nearest float
    return format(bound.normalize(), "f") if sa.fraction else float(bound)


def at_limit(sa: StatArgs, value: float, side: Literal["min", "max"]) -> bool:
    """Whether a bound lies at or beyond the stat's natural range, where no statistic lies past it:
    written as it is."""
    return value <= sa.floor if side == "min" else value >= sa.ceiling


def stored_bound(value: float, side: Literal["min", "max"]) -> decimal.Decimal:
    """A bound that keeps, among statistics as Data-Juicer stores them, those whose value passes
    ``value``: half a stored step outside ``value`` as pandas' ujson writes it.

    A sample on a measured bound (every split's bound is a sample's value) is stored on the rounded
    bound, which may lie on the wrong side of the exact one (1/3 is stored as 0.3333333333): written
    at the exact value, Data-Juicer dropped such samples. Half a step out, the bound lies between two
    stored values, clear of the parser's float errors, so it keeps exactly the samples the sandbox
    keeps unless two distinct values lie within a stored step of each other at the bound. (A bound
    read back from such an export, exported again, moves one step further out: still within that.)
    The stored text comes from ujson itself: it rounds after scaling in floating point, which a
    value within a float of halfway between two stored ones can send either way. Where ujson writes
    an exponent (from above 1e16, and below 1e-15) the step is that of the 11th significant digit,
    since the 10th's spacing shrinks tenfold just below a power of ten.
    """
    text = ujson_dumps(value, double_precision=STORED_DIGITS)
    stored = decimal.Decimal(text)
    exponent = -STORED_DIGITS if "e" not in text else stored.adjusted() - STORED_DIGITS
    step = decimal.Decimal(1).scaleb(exponent)
    return (stored - step / 2 if side == "min" else stored + step / 2).normalize()


def float_bound(bound: Fraction, side: Literal["min", "max"]) -> float:
    """The float bound that keeps exactly the floats an exact ``bound`` keeps (Data-Juicer's reading):
    the smallest float at or above a minimum, the largest at or below a maximum."""
    value = float(bound)
    if side == "min" and Fraction(value) < bound:
        return math.nextafter(value, math.inf)
    if side == "max" and Fraction(value) > bound:
        return math.nextafter(value, -math.inf)
    return value

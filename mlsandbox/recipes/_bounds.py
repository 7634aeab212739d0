"""How a recipe's bounds are written for Data-Juicer, and read back, so that both keep the same samples."""

from __future__ import annotations

import decimal
import math
from fractions import Fraction
from typing import Literal

from mlsandbox.ops import StatArgs

#: Data-Juicer keeps each sample's statistics in a JSON column (Hugging Face datasets' ``Json``
#: feature), written by pandas' ujson with this many decimals (this many significant digits from
#: 1e16 up and below 1e-15) and read back by ujson's parser, which can be a float or two off; its
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


def stored_step(value: float) -> decimal.Decimal:
    """The spacing of the values Data-Juicer stores around ``value``: 1e-10, or the 10th significant
    digit where ujson writes an exponent."""
    if value == 0 or 1e-15 <= abs(value) < 1e16:
        return decimal.Decimal(1).scaleb(-STORED_DIGITS)
    return decimal.Decimal(1).scaleb(decimal.Decimal(value).adjusted() - STORED_DIGITS + 1)


def stored_bound(value: float, side: Literal["min", "max"]) -> decimal.Decimal:
    """A bound that keeps, among statistics as Data-Juicer stores them, those whose value passes
    ``value``: half a stored step outside ``value`` rounded to the stored digits.

    A sample on a measured bound (every split's bound is a sample's value) is stored on the rounded
    bound, which may lie on the wrong side of the exact one (1/3 is stored as 0.3333333333): written
    at the exact value, Data-Juicer dropped such samples. Half a step out, the bound lies between two
    stored values, clear of the parser's float errors, so it keeps exactly the samples the sandbox
    keeps unless two distinct values lie within a stored step of each other at the bound. (A bound
    read back from such an export, exported again, moves one step further out: still within that.)
    Values exactly halfway between stored ones (odd multiples of 1/2048) are rounded to even, as
    ujson rounds them.
    """
    step, exact = stored_step(value), decimal.Decimal(value)
    rounded = exact.quantize(step, rounding=decimal.ROUND_HALF_EVEN)
    return (rounded - step / 2 if side == "min" else rounded + step / 2).normalize()


def float_bound(bound: Fraction, side: Literal["min", "max"]) -> float:
    """The float bound that keeps exactly the floats an exact ``bound`` keeps (Data-Juicer's reading):
    the smallest float at or above a minimum, the largest at or below a maximum."""
    value = float(bound)
    if side == "min" and Fraction(value) < bound:
        return math.nextafter(value, math.inf)
    if side == "max" and Fraction(value) > bound:
        return math.nextafter(value, -math.inf)
    return value

"""How a recipe's bounds are written for Data-Juicer, and read back, so that both keep the same samples."""

from __future__ import annotations

import decimal
import math
from fractions import Fraction
from typing import Literal

from mlsandbox.ops import StatArgs

#: Data-Juicer keeps each sample's statistics in a JSON column (Hugging Face datasets' ``Json``
#: feature), written by pandas' ujson with this many decimals and read back by its parser, which
#: can be a float or two off; its filters compare that stored value, not the statistic, with a bound.
STORED_DECIMALS = 10
_STEP = decimal.Decimal(1).scaleb(-STORED_DECIMALS)


def data_juicer_bound(value: float, side: Literal["min", "max"], sa: StatArgs) -> float | int | str:
    """A condition's bound as the Data-Juicer argument that keeps the same samples: a count rounded
    inward, a fractional bound half a stored step out (:func:`stored_bound`), as a decimal string
    where Data-Juicer reads the text as an exact fraction."""
    if sa.integer:
        # Data-Juicer types count bounds as int; rounding inward keeps the same integer stats.
        return math.ceil(value) if side == "min" else math.floor(value)
    at_limit = value <= sa.floor if side == "min" else value >= sa.ceiling  # no statistic lies beyond it
    bound = decimal.Decimal(value) if at_limit else stored_bound(float(value), side)
    # Data-Juicer reads a fraction's text exactly (Fraction(text)), a float's as the nearest float
    return format(bound.normalize(), "f") if sa.fraction else float(bound)


def stored_bound(value: float, side: Literal["min", "max"]) -> decimal.Decimal:
    """A bound that keeps, among statistics as Data-Juicer stores them, those whose value passes
    ``value``: half a step of the stored values outside ``value`` rounded to their decimals.

    A sample on a measured bound (every split's bound is a sample's value) has a stored value on
    the rounded bound, which may lie on the wrong side of the exact one (1/3 is stored as
    0.3333333333): written at the exact value, Data-Juicer dropped such samples. Half a step out,
    the bound lies between two stored values, clear of the parser's float errors, so it keeps
    exactly the samples the sandbox keeps unless two distinct values lie within 1e-10 of each
    other at the bound. ujson writes values from 1e16 up and below 1e-15 with 10 significant
    digits instead: those get the exact ``value``, read as Data-Juicer reads it.
    """
    if value != 0 and not 1e-15 <= abs(value) < 1e16:
        return exact_toward_kept_side(value, side)
    rounded = decimal.Decimal(value).quantize(_STEP, rounding=decimal.ROUND_HALF_EVEN)
    return (rounded - _STEP / 2 if side == "min" else rounded + _STEP / 2).normalize()


def exact_toward_kept_side(value: float, side: Literal["min", "max"]) -> decimal.Decimal:
    """``value`` as a decimal that, read exactly, keeps the same floats. ``repr(value)`` is the
    shortest decimal that rounds to ``value`` and may lie on the wrong side of it (``repr(4 / 3)``
    is above the float 4/3); rounded toward the kept side to 17 significant digits, finer than float
    spacing, the decimal lies between ``value`` and the next float."""
    rounding = decimal.ROUND_FLOOR if side == "min" else decimal.ROUND_CEILING
    return decimal.Context(prec=17, rounding=rounding).plus(decimal.Decimal(value)).normalize()


def moved_by_storage(sa: StatArgs, lo: float | None, hi: float | None) -> bool:
    """Whether :func:`data_juicer_bound` writes a bound of this stat half a stored step out."""
    return not sa.integer and ((lo is not None and lo > sa.floor) or (hi is not None and hi < sa.ceiling))


def float_bound(bound: Fraction, side: Literal["min", "max"]) -> float:
    """The float bound that keeps exactly the floats an exact ``bound`` keeps (Data-Juicer's reading):
    the smallest float at or above a minimum, the largest at or below a maximum."""
    value = float(bound)
    if side == "min" and Fraction(value) < bound:
        return math.nextafter(value, math.inf)
    if side == "max" and Fraction(value) > bound:
        return math.nextafter(value, -math.inf)
    return value

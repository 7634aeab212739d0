"""Calls that can lose a race with another process sharing a database (creating a schema,
inserting the same row), and then succeed when tried again because the other process's work is done."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def retry_lost_race(call: Callable[[], T], lost: Callable[[Exception], bool], what: str, attempts: int = 3,
                    wait_s: float = 1.0) -> T:
    """``call()``, tried up to ``attempts`` times while it fails with an error that ``lost`` says is a
    lost race, ``wait_s * attempt`` seconds apart; any other error, or the last, is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as err:
            if attempt == attempts or not lost(err):
                raise
            log.debug("%s: another process got there first (%s); trying again", what, err)
            time.sleep(wait_s * attempt)
    raise AssertionError("unreachable")

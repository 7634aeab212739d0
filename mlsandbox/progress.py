"""Progress of long work, always visible: a bar on a terminal, a log line every few percent elsewhere.

``--quiet`` (and any run whose stderr is not a terminal, such as ``mlflow run`` piped to a file)
silences chatter, not progress: the same progress is reported as ``INFO`` log lines on
``mlsandbox.progress``, at most one per ``LINE_STEP`` of the work, and at least one per
``LINE_INTERVAL_S`` while it runs (a slow cell or batch of stats in the middle of it included), naming
the item under way. Tests and benchmarks pass ``"off"``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from types import TracebackType
from typing import Literal

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

Style = Literal["auto", "bar", "lines", "off"]
#: A step reports ``True`` for "auto" and ``False`` for "off", as callers that only switch it do.
StyleArg = Style | bool

LINE_STEP = 0.05  # a log line at every 5% of the work ...
LINE_INTERVAL_S = 30.0  # ... or after this long without one


def resolve(style: StyleArg) -> Literal["bar", "lines", "off"]:
    """The concrete style: ``auto`` is a bar on a terminal (one that has columns to draw it in) and
    log lines elsewhere."""
    if style is True or style == "auto":
        return "bar" if sys.stderr.isatty() and _columns() > 0 else "lines"
    if style is False:
        return "off"
    return style


class Progress:
    """Counts finished units of ``total``; reused units (cache hits, finished cells) count as done
    but not toward the rate, so the time left is the time of the work still to do. The rate is
    measured from the end of the first round of work on (the first ``parallel`` advances: workers
    that started together finish together), so start-up (workers importing libraries, a model
    loading) before it does not inflate the time left, nor a round's near-simultaneous ends shrink it.

    ``total`` may grow while the work runs (:meth:`add`), as a race adds seeds; :meth:`may_add` says
    by how much at most, so that a step at 100% of what is announced does not look finished. Used as
    a context manager, it also reports, as log lines, every ``LINE_INTERVAL_S`` of a wait for the
    next unit.
    """

    def __init__(self, total: int, desc: str, unit: str = "item", style: StyleArg = "auto",
                 initial: int = 0, parallel: int = 1) -> None:
        self.style = resolve(style)
        self.desc, self.unit, self.total, self.done = desc, unit, total, initial
        self.reused, self.worked, self.failed, self.status = 0, 0, 0, ""
        self.possible, self.possible_why = 0, ""  # units that may still be added (:meth:`may_add`)
        self.reusing = 0  # units still to come that are known to be reused (:meth:`add`)
        self._parallel, self._rounds = max(1, parallel), 0  # advances that did work, up to the first round's end
        self.started = self._last_line = time.monotonic()
        self._first_work: tuple[float, int] | None = None  # (when, units worked) at the first unit of work
        self._next_step = self._step_after(initial)
        self._bar = (tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, dynamic_ncols=True)
                     if self.style == "bar" else None)
        self._stop = threading.Event()

    def add(self, n: int, reusing: int = 0) -> None:
        """``n`` more units of work than announced, ``reusing`` of which will be reused: left out of
        the time left until reused units have come."""
        self.total += n
        self.reusing += reusing
        self._next_step = self._step_after(self.done)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def may_add(self, n: int, why: str) -> None:
        """Up to ``n`` more units may be added (0: no more), ``why`` in a few words ("while pools race")."""
        self.possible, self.possible_why = n, why
        self._postfix()

    def working(self, status: str) -> None:
        """``status`` names the item now under way: what a long wait for the next unit is spent on."""
        self.status = status
        self._postfix()

    def advance(self, n: int = 1, status: str = "", reused: bool = False, failed: bool = False) -> None:
        """``n`` units finished (``reused``: taken from a cache, no work done; ``failed``: they failed, which
        the count shows as it grows); ``status`` names the current item."""
        self.done += n
        self.failed += n if failed else 0
        self.reused += n if reused else 0
        self.reusing = max(0, self.reusing - n) if reused else self.reusing
        self.worked += 0 if reused else n
        if self._first_work is None and not reused:
            self._rounds += 1
            if self._rounds >= self._parallel:
                self._first_work = (time.monotonic(), self.worked)
        self.status = status or self.status
        if self._bar is not None:
            self._postfix(refresh=False)
            self._bar.update(n)
        elif self.style == "lines":
            now = time.monotonic()
            if self.done >= self.total or self.done >= self._next_step or now - self._last_line >= LINE_INTERVAL_S:
                self._line(now)

    def seconds_left(self) -> float | None:
        """Time left at the rate of the units that did work since the first round of them, for the
        units not known to be reused; None until a unit of work has finished after that round (the
        first round's time holds the start-up)."""
        if self._first_work is None or self.worked <= self._first_work[1]:
            return None
        since, first = self._first_work
        return (time.monotonic() - since) / (self.worked - first) * max(self.total - self.done - self.reusing, 0)

    def summary(self) -> str:
        pct = 100 * self.done / self.total if self.total else 100.0
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}s ({pct:.0f}%)", *self._notes()]
        parts.append(f"{_clock(time.monotonic() - self.started)} elapsed")
        left = self.seconds_left()
        if left is not None and self.done < self.total:
            parts.append(f"~{_clock(left)} left")
        return ", ".join(parts)

    def _notes(self) -> list[str]:
        """What the bar shows after its count: work that may follow, cache hits, failures, the current item."""
        possible = [f"up to {self.possible} more {self.possible_why}"] if self.possible else []
        return (possible + ([f"{self.reused} reused"] if self.reused else []) + ([f"{self.failed} failed"] if self.failed
                else []) + ([self.status] if self.status else []))

    def _postfix(self, refresh: bool = True) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(", ".join(self._notes()), refresh=refresh)

    def close(self) -> None:
        self._stop.set()
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        if self.style == "lines":
            threading.Thread(target=self._tick, name="mlsandbox-progress", daemon=True).start()
        return self

    def _tick(self) -> None:
        """A line whenever ``LINE_INTERVAL_S`` pass without one while units are still to come."""
        while not self._stop.wait(min(5.0, max(0.05, LINE_INTERVAL_S))):
            now = time.monotonic()
            if now - self._last_line >= LINE_INTERVAL_S and self.done < self.total:
                self._line(now)

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _line(self, now: float) -> None:
        log.info("%s", self.summary())
        self._last_line = now
        self._next_step = self._step_after(self.done)

    def _step_after(self, done: int) -> float:
        step = max(self.total * LINE_STEP, 1.0)
        return (int(done / step) + 1) * step


def _columns() -> int:
    """The terminal's width in columns (0 for a pseudo-terminal given no size, where a bar draws nothing)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"

"""A training loop's progress: a tqdm bar on a terminal, plain lines elsewhere.

On a terminal (and with tqdm installed: `pip install 'pycaffe2[progress]'`)
the bar redraws in place, padded so nothing of a longer earlier line stays
behind, with the count, rate, elapsed time, ETA (when the loop's length is
known) and the loop's scalar outputs (loss, accuracy). When the stream is not
a terminal (a log file, CI) or tqdm is missing, a plain line is written every
`every_s` seconds and at the end, each on its own line:

    train 120/400  9.4 it/s  elapsed 0:00:12  ETA 0:00:29  loss 0.429  accuracy 0.8594
"""
from __future__ import annotations

import os
import time


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def metrics_text(metrics: dict) -> str:
    """'loss 0.429  accuracy 0.8594'."""
    return "  ".join(f"{name} {value:.4g}" for name, value in metrics.items())


class Progress:
    """Counts a loop's iterations from `initial` to `total` (None: unknown) on `stream`."""

    def __init__(self, name: str, total: int | None, initial: int, stream, every_s: float = 10.0,
                 use_tqdm: bool | None = None, min_redraw_s: float = 0.1):
        self.name, self.total, self.initial, self.stream = name, total, initial, stream
        self.every_s, self.done = every_s, initial
        self._start = self._last = time.perf_counter()
        self._metrics: dict = {}
        self.bar = None
        if use_tqdm is None:
            use_tqdm = _isatty(stream)
        if use_tqdm:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:  # a terminal that reports no size (0x0) gets 80x24
                width = {"dynamic_ncols": True} if _columns(stream) > 0 else {"ncols": 80, "nrows": 24}
                self.bar = tqdm(total=total, initial=initial, desc=name, unit="it", file=stream,
                                leave=True, mininterval=min_redraw_s, **width)

    def update(self, done: int, metrics: dict) -> None:
        """Iteration `done` (counted from 1) finished with these scalar outputs."""
        step, self.done, self._metrics = done - self.done, done, dict(metrics)
        if self.bar is not None:
            self.bar.set_postfix_str(metrics_text(metrics), refresh=False)
            self.bar.update(step)
            return
        now = time.perf_counter()
        if now - self._last >= self.every_s:
            self._last = now
            self._line(now)

    def close(self) -> None:
        """The last figures, then the cursor on a fresh line."""
        if self.bar is not None:
            self.bar.set_postfix_str(metrics_text(self._metrics), refresh=False)
            self.bar.close()
            self.bar = None
        elif self.done > self.initial:
            self._line(time.perf_counter())

    def line(self) -> str:
        """The plain progress line for now."""
        return self._text(time.perf_counter())

    def _text(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = (self.done - self.initial) / elapsed
        parts = [f"{self.name} {self.done}" + (f"/{self.total}" if self.total else ""),
                 f"{rate:.1f} it/s", f"elapsed {_clock(elapsed)}"]
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_clock((self.total - self.done) / rate)}")
        if self._metrics:
            parts.append(metrics_text(self._metrics))
        return "  ".join(parts)

    def _line(self, now: float) -> None:
        print(self._text(now), file=self.stream, flush=True)


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):  # not a file, or no size
        return 0


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False

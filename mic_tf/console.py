"""What the operator sees: one-line status messages and progress with an ETA.

* ``status("...")`` prints one line on stdout: what the program is doing
  (data fetched or cached, protocol statistics, the epoch kept). The detail
  goes to ``absl.logging.info`` (shown with ``--verbosity=1``).
* ``Progress`` reports long work outside ``fit`` (reference rows, channel
  evaluation and tuning, mining refreshes, grids): on a terminal one line on
  stderr is redrawn in place and cleared when the work ends; elsewhere (a
  log file, CI) a line is written only every ``log_every`` seconds, so short
  work stays silent and long work shows that it is alive and when it ends.
"""

import sys
import time
from typing import Callable, Iterable, Iterator, Optional, TextIO, TypeVar

T = TypeVar("T")


def status(message: str) -> None:
  """Prints one status line on stdout."""
  print(message, flush=True)


def format_seconds(seconds: float) -> str:
  """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``."""
  seconds = max(0, int(round(seconds)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f"{hours}:{minutes:02d}:{secs:02d}"
  return f"{minutes}:{secs:02d}"


class Progress:
  """Counts finished steps of a known total and shows elapsed time and ETA.

  Example::

    with Progress("channel tuning", total=len(points), unit="settings") as p:
      for point in points:
        ...
        p.update()

  Args:
    label: What is being done.
    total: Number of steps.
    unit: Name of a step, for the line.
    stream: Where to write (default ``sys.stderr``).
    log_every: Seconds between lines when ``stream`` is not a terminal.
    redraw_every: Seconds between redraws on a terminal.
    clock: Time source (tests pass a fake one).
  """

  def __init__(self, label: str, total: int, unit: str = "steps",
               stream: Optional[TextIO] = None, log_every: float = 60.0,
               redraw_every: float = 0.5,
               clock: Callable[[], float] = time.monotonic):
    self.label = label
    self.total = max(0, int(total))
    self.unit = unit
    self.done = 0
    self._stream = stream or sys.stderr
    self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
    self._every = redraw_every if self._tty else log_every
    self._clock = clock
    self._start = clock()
    self._last_write = self._start
    self._width = 0

  @property
  def elapsed(self) -> float:
    return self._clock() - self._start

  def eta(self) -> Optional[float]:
    """Seconds left, from the mean time per finished step (None at 0)."""
    if not self.done:
      return None
    return self.elapsed / self.done * max(0, self.total - self.done)

  def line(self) -> str:
    eta = self.eta()
    left = "?" if eta is None else format_seconds(eta)
    return (f"{self.label}: {self.done}/{self.total} {self.unit}, "
            f"{format_seconds(self.elapsed)} elapsed, ETA {left}")

  def update(self, steps: int = 1) -> None:
    """Marks ``steps`` more steps done; writes a line if it is time."""
    self.done += steps
    now = self._clock()
    if now - self._last_write >= self._every:
      self._write(self.line())
      self._last_write = now

  def _write(self, text: str) -> None:
    if self._tty:
      pad = " " * max(0, self._width - len(text))
      self._stream.write("\r" + text + pad)
      self._width = len(text)
    else:
      self._stream.write(text + "\n")
    self._stream.flush()

  def close(self) -> None:
    """Clears the terminal line; elsewhere notes the end of logged work."""
    if self._tty and self._width:
      self._stream.write("\r" + " " * self._width + "\r")
      self._stream.flush()
    elif not self._tty and self._last_write != self._start:
      self._write(f"{self.label}: {self.done}/{self.total} {self.unit} done "
                  f"in {format_seconds(self.elapsed)}")

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def track(items: Iterable[T], label: str, total: Optional[int] = None,
          unit: str = "steps", **kwargs) -> Iterator[T]:
  """Yields ``items``, counting each as a finished step of a ``Progress``."""
  if total is None:
    total = len(items)  # type: ignore[arg-type]
  with Progress(label, total, unit, **kwargs) as progress:
    for item in items:
      yield item
      progress.update()

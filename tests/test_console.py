"""Status lines and progress with an ETA."""

import io

from mic_tf import console


class _Clock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


class _Tty(io.StringIO):

  def isatty(self):
    return True


def test_format_seconds():
  assert console.format_seconds(0) == "0:00"
  assert console.format_seconds(75) == "1:15"
  assert console.format_seconds(3725) == "1:02:05"


def test_log_lines_only_for_long_work_with_eta():
  clock, out = _Clock(), io.StringIO()
  with console.Progress("tuning u2u", 4, "settings", stream=out,
                        log_every=60, clock=clock) as p:
    clock.now += 10
    p.update()
    assert out.getvalue() == ""  # under a minute: silent
    assert p.eta() == 30.0
    clock.now += 80
    p.update()  # 90 s for 2 of 4: 90 s left
    assert out.getvalue() == ("tuning u2u: 2/4 settings, 1:30 elapsed, ETA "
                              "1:30\n")
    clock.now += 10
    p.update(2)
  assert out.getvalue().splitlines()[-1] == (
      "tuning u2u: 4/4 settings done in 1:40")


def test_short_work_prints_nothing():
  clock, out = _Clock(), io.StringIO()
  for _ in console.track(range(3), "rows", stream=out, clock=clock):
    clock.now += 1
  assert out.getvalue() == ""


def test_terminal_line_is_redrawn_then_cleared():
  clock, out = _Clock(), _Tty()
  with console.Progress("grid", 3, "runs", stream=out, clock=clock) as p:
    assert p.eta() is None and "ETA ?" in p.line()
    clock.now += 5
    p.update()
    clock.now += 5
    p.update()
  text = out.getvalue()
  assert text.startswith("\rgrid: 1/3 runs, 0:05 elapsed, ETA 0:10")
  assert "\rgrid: 2/3 runs, 0:10 elapsed, ETA 0:05" in text
  assert text.endswith("\r")  # the line is cleared
  assert "\n" not in text

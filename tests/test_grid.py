"""Grid variant parsing and the mean ± std table."""

import pytest

import mic_tf  # noqa: F401
from mic_tf import grid


def test_parse_variant():
  assert grid.parse_variant("base") == ((), False)
  assert grid.parse_variant("all") == (("ui", "uu", "ii"), False)
  assert grid.parse_variant("ui+ii") == (("ui", "ii"), False)
  assert grid.parse_variant("all+nn") == (("ui", "uu", "ii"), True)
  with pytest.raises(ValueError, match="Unknown term"):
    grid.parse_variant("ui+xx")
  with pytest.raises(ValueError, match="base\\+nn"):
    grid.parse_variant("base+nn")


def test_summary_table_mean_and_sample_std():
  rows = [{"label": "A", "test": {"recall@20": v}, "train_seconds": 2.0}
          for v in (1.0, 2.0, 3.0)]
  table = grid.summary_table(rows, metrics=("recall@20",))
  assert "| A | 3 | 2.00 ± 1.00 | 2 |" in table

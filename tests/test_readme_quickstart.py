"""The README's Python quickstart runs as written, on ML-100k."""

import contextlib
import io
import json
import os
import re

import mic_tf  # noqa: F401
import mic_tf.names

_README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _quickstart():
  with open(_README) as f:
    text = f.read()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert "mic_tf.load_data" in blocks[0], "the README opens with it"
  return blocks[0]


def test_readme_quickstart_runs(ml100k, tmp_path, monkeypatch):
  del ml100k  # the fixture makes sure the files are in the cache
  code = _quickstart()
  assert len(code.strip().splitlines()) <= 12
  monkeypatch.chdir(tmp_path)  # the export goes under tmp_path
  out = io.StringIO()
  namespace = {}
  with contextlib.redirect_stdout(out):
    exec(code, namespace)  # pylint: disable=exec-used
  metrics = namespace["metrics"]
  assert sorted(metrics) == sorted(mic_tf.names.CHANNELS)
  for m in metrics.values():
    assert 0 < m["recall@50"] < 100
  assert "'u2u':" in out.getvalue().splitlines()[-1]
  model = namespace["model"]
  assert {"ui_loss", "uu_loss", "ii_loss"} <= {m.name for m in model.metrics}
  exported = tmp_path / "exports" / "ml100k"
  with open(exported / "export.json") as f:
    info = json.load(f)
  assert sorted(info["channels"]) == sorted(mic_tf.names.CHANNELS)
  for name in ("user_tower", "item_tower") + mic_tf.names.CHANNELS:
    assert (exported / name / "saved_model.pb").exists(), name

"""The channel figure of the docs is what its committed JSON gives."""

import json
import pathlib

import pytest

from mic_harness import channel_figure

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_FIGURES = sorted((_ROOT / "docs" / "figures").glob("channels_*.json"))


def test_the_channel_figures_are_found():
  assert _FIGURES, "docs/figures/channels_*.json is missing"


@pytest.mark.parametrize("path", _FIGURES, ids=[p.stem for p in _FIGURES])
def test_each_channel_figure_is_its_committed_runs(path, monkeypatch,
                                                   tmp_path):
  # docs/figures/<name>.json names the committed runs and reference rows it
  # shows; recomputing from them must give it back, and the PNG beside it
  # must exist (experiments/channels_figure.py writes both).
  monkeypatch.chdir(_ROOT)
  record = json.loads(path.read_text())
  data = channel_figure.figure_data(
      record["sources"]["groups"], record["sources"]["baselines"],
      record["metric"], record["index"], record["split"])
  assert json.loads(json.dumps(data, ensure_ascii=False)) == record, (
      f"{path.name} is not what its sources give (rerun "
      "experiments/channels_figure.py)")
  assert path.with_suffix(".png").exists()
  channel_figure.plot(data, str(tmp_path / "figure.png"))
  assert (tmp_path / "figure.png").stat().st_size > 10_000


def test_a_missing_channel_is_refused(tmp_path, monkeypatch):
  monkeypatch.chdir(_ROOT)
  with pytest.raises(ValueError, match="no scann u2i result"):
    channel_figure.figure_data(
        ["DSSM=docs/results/converged/dssm_base_s0.json"],
        "docs/results/baselines_ml1m.json", index="scann")

"""Grid variant parsing and a grid's resumable cells."""

import pytest

import mic_tf  # noqa: F401
from mic_harness import grid


def test_parse_variant():
  assert grid.parse_variant("base") == ((), False)
  assert grid.parse_variant("all") == (("ui", "uu", "ii"), False)
  assert grid.parse_variant("ui+ii") == (("ui", "ii"), False)
  assert grid.parse_variant("all+nn") == (("ui", "uu", "ii"), True)
  with pytest.raises(ValueError, match="Unknown term"):
    grid.parse_variant("ui+xx")
  with pytest.raises(ValueError, match="base\\+nn"):
    grid.parse_variant("base+nn")


@pytest.mark.slow
def test_grid_resumes_finished_cells_and_refuses_other_settings(tmp_path):
  import pytest  # pylint: disable=g-import-not-at-top
  from mic_tf import training  # pylint: disable=g-import-not-at-top
  from mic_tf.models.config import MICConfig  # pylint: disable=g-import-not-at-top
  base = training.ExperimentConfig.from_settings(
      dataset="ml-100k", epochs=1, batch_size=512, maxlen=10,
      embedding_dim=8, output_dim=8, hidden_units=(8,), max_item_users=5,
      examples_per_epoch=2048, mic=MICConfig.base(projection_dim=8))
  first = grid.run_grid(base, ["dssm"], ["base"], [0], str(tmp_path),
                        verbose=0)
  again = grid.run_grid(base, ["dssm"], ["base"], [0], str(tmp_path),
                        verbose=0)
  assert again[0]["train_seconds"] == first[0]["train_seconds"]
  assert again[0]["test"] == first[0]["test"]
  assert first[0]["max_epochs"] == 1 and first[0]["converged"] is False
  other = base.replace_settings(learning_rate=0.01)
  with pytest.raises(ValueError, match="learning_rate"):
    grid.run_grid(other, ["dssm"], ["base"], [0], str(tmp_path), verbose=0)

"""Tiny trained and evaluated ML-100k runs for the analysis tests."""

from typing import Optional, Sequence, Tuple

from mic_tf import runs as run_lib
from mic_tf import training
from mic_tf.data import protocol
from mic_tf.features import prepare_data
from mic_tf.models.config import MICConfig


def train_tiny_runs(raw, root, specs: Sequence[Tuple[str, tuple, int]],
                    channels: Sequence[str],
                    tune_grids: Optional[dict] = None):
  """Trains one short run per ``(name, terms, seed)`` under ``root`` and
  evaluates ``channels`` on its test users; returns the prepared data."""
  base = training.ExperimentConfig.from_settings(
      dataset="ml-100k", epochs=1, batch_size=256, maxlen=10,
      max_item_users=10, embedding_dim=16, output_dim=16, hidden_units=(32,),
      examples_per_epoch=2048, eval_batch_size=512)
  prepared = prepare_data(base, protocol.apply_comirec_protocol(raw))
  for name, terms, seed in specs:
    config = training.ExperimentConfig.from_settings(**{
        **base.to_dict(), "output_dir": str(root / name), "seed": seed,
        "mic": MICConfig(terms=terms, projection_dim=16,
                         contrastive_batch_size=64).to_dict()})
    training.run_experiment(config, prepared, verbose=0)
    run_lib.evaluate_run(str(root / name), split="test", channels=channels,
                         prepared=prepared, tune_grids=tune_grids)
  return prepared

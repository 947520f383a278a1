"""Flags -> ExperimentConfig, and the errors bad flags give."""

from absl import flags
import pytest

import mic_tf  # noqa: F401
from mic_tf import cli


_BEFORE = set(flags.FLAGS)
cli.define_data_flags()
cli.define_training_flags()
cli.define_mic_flags()
cli.define_mining_flags()
_OURS = set(flags.FLAGS) - _BEFORE


@pytest.fixture()
def parse():
  # A private FlagValues holding only the CLI's flags, so flags that other
  # test modules register globally (e.g. a binary's required --run_dir) do
  # not take part in parsing.
  fv = flags.FlagValues()
  for name in _OURS:
    fv[name] = flags.FLAGS[name]

  def _parse(*argv):
    fv.unparse_flags()
    fv(["prog", *argv])
    return fv

  yield _parse
  fv.unparse_flags()


def test_defaults_give_the_paper_settings(parse):
  f = parse()
  c = cli.experiment_config_from_flags(f)
  assert (c.dataset, c.tower, c.batch_size, c.learning_rate) == (
      "ml-1m", "dssm", 1024, 1e-3)
  assert (c.embedding_dim, c.dropout) == (128, 0.2)
  assert c.mic.terms == () and not c.mining.enabled
  assert c.mic.temperature == 0.1


def test_mic_and_mining_flags(parse):
  f = parse("--mic_terms=ui,uu", "--mic_lambda=0.5", "--w_uu=2",
            "--mining_channels=uu", "--num_clusters=7",
            "--contrastive_batch_size=64", "--tower=comirec_sa",
            "--num_interests=3")
  c = cli.experiment_config_from_flags(f)
  assert c.mic.terms == ("ui", "uu") and c.mic.lambda_ == 0.5
  assert c.mic.weights["uu"] == 2.0 and c.mic.contrastive_batch_size == 64
  assert c.mining.channels == ("uu",) and c.mining.num_clusters == 7
  assert c.tower_kwargs == {"num_interests": 3}


def test_tuned_preset_with_command_line_overrides(parse):
  from mic_tf.models.config import MICConfig  # pylint: disable=g-import-not-at-top
  c = cli.experiment_config_from_flags(parse("--mic_preset=tuned"))
  assert c.mic == MICConfig.tuned()
  c = cli.experiment_config_from_flags(
      parse("--mic_preset=tuned", "--mic_terms=ii", "--w_ui=0.5",
            "--history_mask=0.3"))
  assert c.mic.terms == ("ii",) and c.mic.history_mask == 0.3
  assert c.mic.weights["ui"] == 0.5
  assert c.mic.lambda_ == MICConfig.tuned().lambda_
  assert c.mic.contrastive_batch_size == 128


@pytest.mark.parametrize("argv, match", [
    (["--baselines=popular"], "Unknown --baselines"),
    (["--hidden_units=a,b"], "--hidden_units must be integers"),
    (["--mic_terms=xy"], "Unknown contrastive term"),
    (["--data_path=/x"], "--data_path is not used"),
])
def test_bad_flags_name_the_problem(parse, argv, match):
  f = parse(*argv)
  with pytest.raises(ValueError, match=match):
    cli.experiment_config_from_flags(f)


def test_out_of_range_flag_is_rejected_at_parse_time(parse):
  with pytest.raises(flags.IllegalFlagValueError):
    parse("--epochs=0")

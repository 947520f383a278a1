"""Flags -> ExperimentConfig, and the errors bad flags give."""

import importlib.util
import pathlib

from absl import flags
import pytest

import mic_tf  # noqa: F401
from mic_tf import baselines
from mic_tf import cli
from mic_tf.config import ExperimentConfig

_ROOT = pathlib.Path(__file__).resolve().parents[1]


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
  assert (c.data.dataset, c.model.tower, c.training.batch_size,
          c.training.learning_rate) == ("ml-1m", "dssm", 1024, 1e-3)
  assert (c.model.embedding_dim, c.model.dropout) == (128, 0.2)
  assert c.mic.terms == () and not c.mining.enabled
  assert c.mic.temperature == 0.1
  assert c.model.init_order == "lazy"
  assert cli.experiment_config_from_flags(
      parse("--init_order=towers_first")).model.init_order == "towers_first"


def test_the_binary_without_flags_trains_the_default_config(monkeypatch):
  # One set of defaults: experiments/train.py with no flags runs exactly
  # ExperimentConfig(), and the flags' help texts are the settings'.
  spec = importlib.util.spec_from_file_location(
      "train_defaults_binary", _ROOT / "experiments" / "train.py")
  train = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(train)
  seen = []
  monkeypatch.setattr(train.baselines, "run_with_baselines",
                      lambda config, names, verbose: seen.append(config) or [])
  try:
    cli.invoke(train.main, ["train.py"])
  finally:
    flags.FLAGS.unparse_flags()
  assert seen == [ExperimentConfig()]
  assert flags.FLAGS["maxlen"].help == "History length."


def test_mic_and_mining_flags(parse):
  f = parse("--mic_terms=ui,uu", "--mic_lambda=0.5", "--w_uu=2",
            "--mining_channels=uu", "--num_clusters=7",
            "--contrastive_batch_size=64", "--tower=comirec_sa",
            "--num_interests=3")
  c = cli.experiment_config_from_flags(f)
  assert c.mic.terms == ("ui", "uu") and c.mic.lambda_ == 0.5
  assert c.mic.weights["uu"] == 2.0 and c.mic.contrastive_batch_size == 64
  assert c.mining.channels == ("uu",) and c.mining.num_clusters == 7
  assert c.model.tower_kwargs == {"num_interests": 3}


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


def test_ii_positives_flags(parse):
  from mic_tf.models.config import MICConfig  # pylint: disable=g-import-not-at-top
  c = cli.experiment_config_from_flags(parse("--mic_preset=tuned"))
  assert (c.mic.ii_positives, c.mic.ii_neighbors) == ("views", 20)
  c = cli.experiment_config_from_flags(
      parse("--mic_preset=tuned", "--ii_positives=cooccurrence",
            "--ii_neighbors=10"))
  assert c.mic == MICConfig.tuned(ii_positives="cooccurrence",
                                  ii_neighbors=10)
  assert cli.flags_for_params({"ii_neighbors": 10, "ii_positives": "x"},
                              c) == ["--ii_neighbors=10",
                                     "--ii_positives=cooccurrence"]
  with pytest.raises(flags.IllegalFlagValueError):
    parse("--ii_positives=users")
  with pytest.raises(flags.IllegalFlagValueError):
    parse("--ii_neighbors=0")


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


def _fake_prepared():
  import types  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  seqs = [np.array(s) for s in ([1, 2], [1, 2, 3], [3, 4], [2], [2, 4, 1],
                                [3, 4, 2])]
  ns = types.SimpleNamespace
  return ns(dataset=ns(sequences=seqs, train_users=[0, 1, 2, 3], num_items=5),
            valid=ns(histories=[seqs[4][:2]], targets=[seqs[4][2:]]),
            test=ns(histories=[seqs[5][:2]], targets=[seqs[5][2:]]))


def test_run_baseline_selects_on_valid_and_tests_once(monkeypatch):
  calls = []

  class Fake:  # retrieves item `p` for everyone

    def __init__(self, num_items, p):
      del num_items
      self.p = p

    def fit(self, train):
      assert len(train) == 4  # training users only
      return self

    def retrieve(self, histories, k, exclude_history=True):
      del exclude_history
      calls.append((self.p, int(histories[0][0])))
      return [[self.p] + [0] * (k - 1)] * len(histories)

  monkeypatch.setattr(baselines, "make_baseline",
                      lambda name, n, **params: Fake(n, **params))
  row = baselines.run_baseline("ease", _fake_prepared(), cutoffs=(1,),
                         grid=("p", (4, 1, 2)))
  # Valid target is item 1 (history 2, 4), test target item 2 (history 3, 4).
  assert row["params"] == {"p": 1}
  assert row["valid"]["recall@1"] == 100.0
  assert row["test"]["recall@1"] == 0.0  # evaluated with p=1, not with 2
  assert [r["p"] for r in row["selection"]["rows"]] == [4, 1, 2]
  assert row["selection"]["users"] == "valid"
  assert [c for c in calls if c[1] == 3] == [(1, 3)]  # test users: once


@pytest.mark.parametrize("name, param", [
    ("mostpop", None), ("itemknn", None), ("userknn", "neighbours"),
    ("ease", "l2")])
def test_run_baseline_real_models(name, param):
  grid = {"userknn": ("neighbours", (1, 2)), "ease": ("l2", (1.0, 10.0))}
  row = baselines.run_baseline(name, _fake_prepared(), cutoffs=(1, 2),
                         grid=grid.get(name))
  assert row["name"] == baselines.BASELINE_NAMES[name]
  assert set(row["valid"]) == set(row["test"]) and "recall@2" in row["test"]
  if param:
    assert list(row["params"]) == [param]
    assert "(" + param + "=" in baselines.results_table([row],
                                                    metrics=("recall@2",))
  else:
    assert "params" not in row


def test_model_label_spells_every_model_one_way():
  from mic_tf import names  # pylint: disable=g-import-not-at-top
  assert names.model_label("dssm") == "DSSM"
  assert names.model_label("dssm", ("ui", "uu", "ii")) == "DSSM+MIC(UI+UU+II)"
  assert names.model_label("comirec_sa", ("ii",), mined=True) == (
      "comirec_sa+MIC(II) +mining")


def test_make_baseline_rejects_unknown_name():
  with pytest.raises(ValueError, match="Unknown baseline"):
    baselines.make_baseline("svd", 5)


def test_weight_decay_flag(parse):
  assert cli.experiment_config_from_flags(parse()).training.weight_decay == 0.0
  c = cli.experiment_config_from_flags(parse("--weight_decay=0.01"))
  assert c.training.weight_decay == 0.01
  with pytest.raises(flags.IllegalFlagValueError):
    parse("--weight_decay=-1")


@pytest.mark.parametrize("space", ["mic", "base", "base_wd"])
@pytest.mark.parametrize("start", [(), ("--mic_preset=tuned",)])
def test_flags_for_params_give_the_trial_back(parse, space, start):
  from mic_tf import tuning  # pylint: disable=g-import-not-at-top
  start = ("--mic_terms=ui,uu,ii", "--term_temperatures=uu=0.3", *start)
  base = cli.experiment_config_from_flags(parse(*start))
  # One value per searched setting, away from every default: the upper
  # bound of a range, the last choice of a categorical.
  params = {name: (dim.choices[-1] if dim.kind == "categorical"
                   else dim.high * 0.9 if dim.kind == "float"
                   else int(dim.high))
            for name, dim in tuning.SPACES[space].items()}
  trial = tuning.apply_params(base, params)
  argv = cli.flags_for_params(params, trial)
  assert len(argv) == len({a.split("=")[0] for a in argv})
  again = cli.experiment_config_from_flags(parse(*start, *argv))
  assert again.to_dict() == trial.to_dict()
  assert again.to_dict() != base.to_dict()


def test_flags_for_params_refuses_a_setting_without_a_flag(parse):
  config = cli.experiment_config_from_flags(parse())
  with pytest.raises(ValueError, match="No flag sets the searched setting "
                     "'data_seed'"):
    cli.flags_for_params({"data_seed": 3}, config)


def test_distillation_flags_default_off_and_set_the_config(parse):
  assert cli.experiment_config_from_flags(parse()).mic.distill_weight == 0.0
  c = cli.experiment_config_from_flags(parse(
      "--mic_preset=tuned", "--distill_weight=0.5", "--distill_items=7",
      "--distill_start_epoch=2"))
  assert (c.mic.distill_weight, c.mic.distill_items,
          c.mic.distill_start_epoch) == (0.5, 7, 2)
  assert c.mic.lambda_ == 0.9  # the preset still applies
  with pytest.raises(flags.IllegalFlagValueError):
    parse("--distill_weight=-1")

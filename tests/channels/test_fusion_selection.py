"""The fusion search chooses its family of rules on held-out valid users.

Pure numpy: a stand-in for the per-user scores of each rule, no model.
"""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

import numpy as np
import pytest

from mic_tf import channels
from mic_tf.channels import tuning

U2I_ALONE = channels.ChannelConfig(
    fusion=channels.FusionConfig(weights=[["u2i", 1.0]]))
U2U_ALONE = channels.ChannelConfig(
    fusion=channels.FusionConfig(weights=[["u2u", 1.0]]))
PAIR = channels.ChannelConfig(fusion=channels.FusionConfig(
    mode="rrf", weights=[["u2u", 2.0], ["ease", 1.0]]))
TRIPLE = channels.ChannelConfig(fusion=channels.FusionConfig(
    mode="rrf", weights=[["u2i", 1.0], ["u2u", 2.0], ["ease", 1.0]]))


class _Scores:
  """Each rule's per-user values, given (what ``_RuleScores`` computes)."""
  metric = "recall@50"

  def __init__(self, configs, vectors):
    self._by_rule = {tuning._fusion_key(c.fusion): v  # pylint: disable=protected-access
                     for c, v in zip(configs, vectors)}

  def __call__(self, config):
    values = self._by_rule[tuning._fusion_key(config.fusion)]  # pylint: disable=protected-access
    return values, {self.metric: float(values.mean())}


def test_families_hold_each_channel_alone_and_drop_repeats():
  members = tuning._family_members([U2I_ALONE, U2U_ALONE, PAIR, TRIPLE])  # pylint: disable=protected-access
  assert list(members) == ["single", "pairs", "grid", "refined"]
  assert members["single"].tolist() == [True, True, False, False]
  assert members["pairs"].tolist() == [True, True, True, False]
  assert members["grid"].all() and members["refined"].all()
  # Without a triple, "pairs" is the whole grid: the simpler name is kept.
  members = tuning._family_members([U2I_ALONE, U2U_ALONE, PAIR])  # pylint: disable=protected-access
  assert list(members) == ["single", "pairs", "refined"]


def test_held_out_values_equal_a_numpy_reference():
  rng = np.random.default_rng(7)
  configs = [U2I_ALONE, U2U_ALONE, PAIR, TRIPLE]
  vectors = rng.random((4, 43)) * 100.0
  members = tuning._family_members(configs)  # pylint: disable=protected-access
  del members["refined"]
  got = tuning._cross_validated_families(  # pylint: disable=protected-access
      _Scores(configs, vectors), configs, members, 5, {})
  fold_of = np.random.default_rng(0).permutation(43) % 5
  for family, mask in members.items():
    held = np.zeros(43)
    for fold in range(5):
      train = fold_of != fold
      means = np.where(mask, vectors[:, train].mean(axis=1), -np.inf)
      held[~train] = vectors[int(np.argmax(means)), ~train]
    assert got[family] == pytest.approx(held.mean(), abs=1e-12)


def test_a_mix_that_wins_on_one_users_noise_loses_on_held_out_users():
  # The pair is 1 below U2U on every user but one, where it is 60 above:
  # its mean over all 40 users is higher, yet it wins only the folds that
  # see that user, and loses on the users those folds hold out.
  u2u = np.linspace(20.0, 60.0, 40)
  pair = u2u - 1.0
  pair[17] += 61.0
  configs = [U2I_ALONE, U2U_ALONE, PAIR]
  scores = _Scores(configs, np.stack([u2u - 10.0, u2u, pair]))
  assert pair.mean() > u2u.mean()
  members = tuning._family_members(configs)  # pylint: disable=protected-access
  del members["refined"]
  got = tuning._cross_validated_families(scores, configs, members, 5, {})  # pylint: disable=protected-access
  assert got["single"] == pytest.approx(u2u.mean())
  assert got["pairs"] < got["single"]


PRIOR = channels.ChannelConfig(fusion=tuning.PRIOR_FUSION)


def test_prior_is_kept_unless_the_search_beats_it_by_the_margin():
  rng = np.random.default_rng(3)
  prior = rng.random(30) * 100.0
  for shift, noise in ((0.5, 20.0), (8.0, 5.0), (0.0, 0.0)):
    searched = prior + shift + rng.normal(0.0, noise, 30)
    scores = _Scores([TRIPLE, PRIOR], [searched, prior])
    difference = searched - prior
    se = difference.std(ddof=1) / np.sqrt(30)
    for margin in (0.0, 1.0, 2.0):
      keep, summary = tuning._against_prior(scores, TRIPLE, PRIOR, margin)  # pylint: disable=protected-access
      assert keep == (not difference.mean() > margin * se)
      assert summary["search_minus_prior"] == pytest.approx(
          difference.mean())
      assert summary["search_minus_prior_se"] == pytest.approx(se)
      assert summary["kept_prior"] == keep
  # A clear, steady gain is served; a gain of one user's noise is not.
  steady = _Scores([TRIPLE, PRIOR], [prior + 3.0, prior])
  assert not tuning._against_prior(steady, TRIPLE, PRIOR, 2.0)[0]  # pylint: disable=protected-access
  lucky = prior.copy()
  lucky[4] += 90.0
  noisy = _Scores([TRIPLE, PRIOR], [lucky, prior])
  assert lucky.mean() > prior.mean()
  assert tuning._against_prior(noisy, TRIPLE, PRIOR, 2.0)[0]  # pylint: disable=protected-access
  assert not tuning._against_prior(noisy, TRIPLE, PRIOR, 0.0)[0]  # pylint: disable=protected-access


def test_prior_rule_keeps_only_the_channels_that_can_be_built():
  base = channels.ChannelConfig()
  full = tuning._prior_rule(base, channels.FUSABLE)  # pylint: disable=protected-access
  assert full.fusion == tuning.PRIOR_FUSION
  no_ease = tuning._prior_rule(  # pylint: disable=protected-access
      base, [c for c in channels.FUSABLE if c != "ease"])
  assert no_ease.fusion.channels == ("u2i", "u2u", "i2i")
  assert no_ease.fusion.mode == "rrf"
  assert tuning._prior_rule(base, ["itemknn"]) is None  # pylint: disable=protected-access


def test_negative_prior_margin_is_refused():
  with pytest.raises(ValueError, match="prior_margin must be >= 0"):
    tuning.grid_search(None, None, "fused", {"mode": ["rrf"]},
                       prior_margin=-1.0)

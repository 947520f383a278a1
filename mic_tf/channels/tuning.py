"""Grid search of the channels' settings and their fusion on validation users.

The channels' settings (U2I's history weight ``w``; U2U ``N``, ``gamma``,
``alpha``; I2I ``M'``, ``M``, ``alpha``; ItemKNN's neighbourhood,
UserKNN's ``k``, EASE's ``lambda``; the fusion rule and weights) are
chosen on *valid* users, never on test users, with the channel modules
themselves (exact indexes)::

  assets = ChannelAssets(model, prepared.tables, prepared.dataset)
  config, results = tune_channels(assets, prepared.valid, DEFAULT_GRIDS)

U2U and I2I: the channel searches once with the largest ``N`` (or ``M'``
and ``M``) of the grid, then every grid point re-ranks the first ``N`` (or
``M'``, ``M``) with the channel's own ranking, exactly as a channel built
with that point would; grid points that differ in ``alpha`` alone share one
aggregation of their candidates (``Channel.rank_blends``). U2I and the
classical channels: each grid point builds (fits) its channel, which
retrieves.

Fusion: the tuned channels' lists are retrieved once and every candidate
rule fuses them (``fusion.fuse_lists``, what the fused channel runs):
rank-based (``quota``, reciprocal rank ``rrf``) and score-normalised
(``score``) rules over each channel alone and mixes of two or three; then
the best rule's weights are refined by coordinate ascent
(``refine_fusion``: each channel's weight, an absent channel's too, is
scaled by a few factors and a change is kept when it improves the metric).
With hundreds of rules and few valid users, the rule that scores best on
them could be one that fits their noise. So the searched rule is served
only when it beats a fixed prior rule (``PRIOR_FUSION``) on the tuning
users by more than ``PRIOR_MARGIN`` standard errors of their paired
per-user difference; otherwise the prior is served. With
``fusion_folds`` >= 2 the search first chooses how complex a rule it may
pick (before the prior is considered), by cross-validation
on the valid users: each family of ``FUSION_FAMILIES`` (each channel
alone, at most two channels, the whole grid, the grid's best refined)
picks its best rule on the other folds and is scored on the held-out one;
the family with the best held-out metric (the simpler one on a tie) then
picks its best rule on all the valid users (every family holds each
channel alone). ``GridSearchResult.summary`` says which family won and
with what held-out metric, whether a true mix beat every single channel on
the valid users, and which channels the chosen fusion uses. Channels the
catalogue is too large for (EASE above its item limit) are left out with
one line saying so.
"""

import dataclasses
import functools
import itertools
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf import metrics as metric_lib
from mic_tf import console
from mic_tf import names
from mic_tf.channels import classical
from mic_tf.channels import fusion
from mic_tf.channels.assets import build_channels
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.evaluate import retrieve_users
from mic_tf.channels.ranking import pad_lists

TUNABLE = ((names.U2I, names.U2U, names.I2I) + names.CLASSICAL_CHANNELS +
           (names.FUSED,))
#: Factors ``refine_fusion`` scales a weight by (0 drops the channel).
REFINE_FACTORS = (0.0, 0.5, 1.0, 2.0)
#: Folds of the tuning users on which the fusion search chooses how complex
#: a rule it may pick (``FUSION_FAMILIES``); below 2 (the default), or with
#: fewer than two users a fold, it takes the refined best rule of all the
#: users. Off by default: on ML-100k and on 300-user subsets of it the
#: held-out choice did not raise the test users' fused list
#: (docs/experiments/fusion-selection.md).
FUSION_FOLDS = 0
#: The fusion search's families of rules, simplest first: each channel
#: alone, at most two channels, the whole grid, the grid's best with its
#: weights refined.
FUSION_FAMILIES = ("single", "pairs", "grid", "refined")
#: The fusion rule the search falls back on: reciprocal rank fusion of U2I,
#: U2U, I2I and EASE weighted 1, 2, 1, 2, the shape the searches on ML-1M
#: and on a fifth of its users chose on their valid users (channels the
#: catalogue cannot build are dropped from it).
PRIOR_FUSION = fusion.FusionConfig(
    mode="rrf", weights=[[names.U2I, 1.0], [names.U2U, 2.0],
                         [names.I2I, 1.0], [names.EASE, 2.0]])
#: The search serves its own rule only when it beats ``PRIOR_FUSION`` on
#: the tuning users by more than this many standard errors of their paired
#: per-user difference; None serves the search's rule always. With few
#: valid users the best of hundreds of rules wins on their noise: on ML-100k
#: (94 valid users) the prior raised the test users' fused list by 1.1
#: points, and it was level or better on 300-user subsets of ML-100k and on
#: a fifth of ML-1M (docs/experiments/fusion-selection.md).
PRIOR_MARGIN = 2.0


def _fusion_weights(channels: Sequence[str] = names.FUSABLE,
                    largest: int = 3) -> List[List[List[Any]]]:
  """Each channel alone, then mixes of two .. ``largest`` channels with
  weights 1 or 2 (all-equal weights once)."""
  out = [[[c, 1.0]] for c in channels]
  for size in range(2, largest + 1):
    for chosen in itertools.combinations(channels, size):
      for combo in itertools.product((1.0, 2.0), repeat=size):
        if len(set(combo)) == 1 and combo[0] != 1.0:  # (2, 2) is (1, 1)
          continue
        out.append([[c, w] for c, w in zip(chosen, combo)])
  return out


#: The default grids of ``experiments/evaluate.py`` (5, 18, 18, 5, 5, 8
#: points; the fusion 191 weightings x 4 rules, then ``refine_fusion``).
DEFAULT_GRIDS = {
    names.U2I: {"history_weight": [0.0, 0.25, 0.5, 1.0, 2.0]},
    names.U2U: {"num_neighbours": [20, 50, 100], "gamma": [1.0, 2.0],
                "alpha": [0.0, 0.5, 1.0]},
    names.I2I: {"num_history_items": [5, 20],
                "num_similar_items": [10, 20, 50],
                "alpha": [0.0, 0.5, 1.0]},
    names.ITEMKNN: {"neighbourhood": [20, 50, 100, 200, 500]},
    names.USERKNN: {"neighbours": [10, 20, 50, 100, 200]},
    names.EASE: {"l2": [10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
                        5000.0]},
    names.FUSED: {"mode": ["quota", "score", "rrf"],
                  "normalization": ["minmax", "rank"],
                  "weights": _fusion_weights()},
}


@dataclasses.dataclass
class GridSearchResult:
  """Outcome of ``grid_search``.

  Attributes:
    best_config: The base ``ChannelConfig`` with the best grid point.
    best_params: That grid point.
    best_value: Its metric value.
    rows: Every grid point with its metrics, in grid order.
    summary: For the fusion: the best single channel and the best true mix
      of the grid (``{"best_single": .., "best_single_value": ..,
      "best_mix": .., "best_mix_value": .., "mix_wins": ..}``), the grid's
      best rule (``grid_best``, ``grid_best_value``), each family's held-out
      metric (``family_values``, ``{}`` when ``folds`` is 0) and the family
      chosen (``family``), the chosen rule (``chosen``, ``chosen_value``;
      ``refined``: the grid's best with refined weights), the channels it
      uses (``channels_used``) and the channels left out of the search
      (``left_out``), and against ``PRIOR_FUSION``: the prior rule
      (``prior``, ``prior_value``), the margin (``prior_margin``), the
      searched rule's mean per-user lead over it and that lead's standard
      error (``search_minus_prior``, ``search_minus_prior_se``) and whether
      the prior was served (``kept_prior``); empty otherwise.
  """
  best_config: ChannelConfig
  best_params: Dict[str, Any]
  best_value: float
  rows: List[Dict[str, Any]]
  summary: Dict[str, Any] = dataclasses.field(default_factory=dict)


def _grid_points(grid: Mapping[str, Sequence[Any]]) -> List[Dict[str, Any]]:
  if not grid:
    raise ValueError("grid is empty: map at least one setting to its "
                     "candidate values, e.g. {'alpha': [0.0, 0.5, 1.0]}.")
  for name, values in grid.items():
    if isinstance(values, (str, bytes)) or not len(values):
      raise ValueError(f"grid[{name!r}] must be a non-empty list of values, "
                       f"got {values!r}.")
  keys = list(grid)
  return [dict(zip(keys, combo))
          for combo in itertools.product(*(grid[n] for n in keys))]


def _section(config: ChannelConfig, channel: str):
  return config.fusion if channel == names.FUSED else getattr(config, channel)


def _with_section(config: ChannelConfig, channel: str,
                  params: Mapping[str, Any]) -> ChannelConfig:
  name = "fusion" if channel == names.FUSED else channel
  section = _section(config, channel)
  fields = {f.name for f in dataclasses.fields(section)}
  unknown = sorted(set(params) - fields)
  if unknown:
    raise ValueError(f"{unknown} are not {type(section).__name__} fields; "
                     f"tunable fields: {sorted(fields)}.")
  if channel == names.U2U and "history_len" in params:
    raise ValueError("history_len changes the U2U candidates themselves, "
                     "not their ranking: compare it with separate runs of "
                     "--channel_config instead of the grid.")
  return config.replace(**{name: dataclasses.replace(section, **params)})


def _batches(users: F.EvalUsers, batch_size: int):
  n = len(users.targets)
  for start in range(0, n, batch_size):
    stop = min(start + batch_size, n)
    feats = {k: tf.constant(np.asarray(v[start:stop]), tf.int32)
             for k, v in users.features.items()}
    yield feats, users.histories[start:stop]


def _rankings(assets: ChannelAssets, users: F.EvalUsers, channel: str,
              configs: Sequence[ChannelConfig], base: ChannelConfig, k: int,
              exclude_history: bool, batch_size: int) -> List[np.ndarray]:
  """Each config's ranked ids: one search, one ``rank`` per config (one
  search per I2I similarity space in the grid)."""
  sections = [_section(c, channel) for c in configs]
  if channel == names.I2I and any(s.space != base.i2i.space
                                  for s in sections):
    out = [None] * len(configs)
    for space in dict.fromkeys(s.space for s in sections):
      chosen = [i for i, s in enumerate(sections) if s.space == space]
      lists = _rankings(assets, users, channel, [configs[i] for i in chosen],
                        _with_section(base, channel, {"space": space}), k,
                        exclude_history, batch_size)
      for i, ids in zip(chosen, lists):
        out[i] = ids
    return out
  module = build_channels(assets, (channel,), k, names.EXACT, base,
                          exclude_history)[channel]
  if channel == names.U2U:
    largest = {"num_neighbours": max(s.num_neighbours for s in sections)}
  else:
    largest = {"num_history_items": max(s.num_history_items
                                        for s in sections),
               "num_similar_items": max(s.num_similar_items
                                        for s in sections)}
  rank = tf.function(functools.partial(module.rank_blends),
                     reduce_retracing=True, autograph=False)
  # Grid points that differ in alpha alone share their candidates and
  # cosines: one ``rank_blends`` call ranks them all.
  groups: Dict[Any, List[int]] = {}
  for i, section in enumerate(sections):
    groups.setdefault(dataclasses.replace(section, alpha=0.0), []).append(i)
  out = [[] for _ in configs]
  for feats, histories in _batches(users, batch_size):
    encoded = module.encoder(feats)
    exclude = module.exclusions(
        encoded.history,
        tf.constant(pad_lists(histories)) if exclude_history else None)
    searched = module.search(encoded, exclude, numpy=True, **largest)
    for members in groups.values():
      section = sections[members[0]]
      if channel == names.U2U:
        n = section.num_neighbours
        narrowed = (searched[0][:, :n], searched[1][:, :n])
      else:
        m_prime, m = section.num_history_items, section.num_similar_items
        narrowed = (searched[0][:, :m_prime],
                    searched[1][:, :m_prime, :m + 1],
                    searched[2][:, :m_prime, :m + 1])
      alphas = tuple(tf.constant(sections[i].alpha, tf.float32)
                     for i in members)
      ranked = rank(encoded, narrowed, exclude, module.settings(section),
                    alphas)
      for i, (ids, _) in zip(members, ranked):
        out[i].append(ids.numpy())
  return [np.concatenate(parts) for parts in out]


def _built_rankings(assets: ChannelAssets, users: F.EvalUsers,
                    channel: str, configs: Sequence[ChannelConfig],
                    k: int, exclude_history: bool,
                    batch_size: int) -> List[np.ndarray]:
  """Each config's ids: its channel is built (a classical model fitted)
  and retrieves."""
  out = []
  for config in configs:
    module = build_channels(assets, (channel,), k, names.EXACT, config,
                            exclude_history)[channel]
    out.append(retrieve_users(module, users, batch_size)[0])
  return out


def _fusion_lists(assets: ChannelAssets, users: F.EvalUsers,
                  channels: Sequence[str], base: ChannelConfig, k: int,
                  exclude_history: bool, batch_size: int
                  ) -> Dict[str, Tuple[tf.Tensor, tf.Tensor]]:
  """The lists of ``channels`` with ``base``'s settings (retrieved once)."""
  modules = build_channels(assets, channels, k, names.EXACT, base,
                           exclude_history)
  return {c: tuple(tf.constant(x) for x in retrieve_users(modules[c], users,
                                                          batch_size))
          for c in channels}


def _fusion_key(config: fusion.FusionConfig) -> Tuple[Any, ...]:
  """What a fusion rule computes (settings a rule ignores left out)."""
  weights = tuple(config.weights.items())
  if config.is_single:
    return ("single", weights[0][0])
  return (config.mode, weights,
          config.normalization if config.mode == "score" else None,
          config.rrf_k if config.mode == "rrf" else None)


def _fuse(lists, config: ChannelConfig, k: int) -> np.ndarray:
  # Eagerly: each rule would be a trace of its own.
  return fusion.fuse_lists(lists, config.fusion, k)[0].numpy()


def grid_search(assets: ChannelAssets, users: F.EvalUsers, channel: str,
                grid: Mapping[str, Sequence[Any]],
                base: Optional[ChannelConfig] = None,
                metric: str = "recall@50",
                cutoffs: Sequence[int] = (20, 50),
                exclude_history: bool = True,
                batch_size: int = 256,
                fusion_folds: int = FUSION_FOLDS,
                prior_margin: Optional[float] = PRIOR_MARGIN
                ) -> GridSearchResult:
  """Picks one channel's settings on (validation) users.

  Args:
    assets: The model's ``ChannelAssets``.
    users: The users to tune on (``prepared.valid``).
    channel: One of ``TUNABLE``.
    grid: Field of the channel's config section (``U2IConfig``,
      ``U2UConfig``, ``I2IConfig``, ``ItemKNNConfig``, ``UserKNNConfig``,
      ``EASEConfig``, ``FusionConfig``) -> candidate values; every
      combination is tried (for the fusion: every distinct rule, then
      ``refine_fusion``).
    base: Settings of everything not in the grid (defaults if None).
    metric: Metric to maximise (a ``mic_tf.metrics`` name, e.g.
      ``"recall@50"``); ties keep the earlier grid point.
    cutoffs: Metric cutoffs; must include the metric's.
    exclude_history: Exclude the users' input history (as evaluated).
    batch_size: Users per batch.
    fusion_folds: For the fusion, the folds of ``users`` that choose the
      family of rules (``FUSION_FAMILIES``) by held-out metric; 0 (the
      default, ``FUSION_FOLDS``) takes the refined best rule of the grid on
      all users.
    prior_margin: For the fusion, serve the searched rule only when it beats
      ``PRIOR_FUSION`` on ``users`` by more than this many standard errors of
      the paired per-user difference (``PRIOR_MARGIN``); None: always serve
      the searched rule.

  Returns:
    The ``GridSearchResult``.

  Raises:
    ValueError: On an unknown channel, field or metric, or an empty grid.
  """
  if channel not in TUNABLE:
    raise ValueError(f"channel must be one of {TUNABLE}, got {channel!r}.")
  if prior_margin is not None and not prior_margin >= 0:
    raise ValueError(f"prior_margin must be >= 0 (standard errors) or None "
                     f"(no prior), got {prior_margin}.")
  cutoffs = metric_lib.check_cutoffs(cutoffs)
  metric_names = [f"{m}@{n}" for m in metric_lib.METRIC_NAMES
                  for n in cutoffs]
  if metric not in metric_names:
    raise ValueError(f"metric {metric!r} is not computed with cutoffs "
                     f"{cutoffs}; choose from {metric_names}.")
  base = base or ChannelConfig()
  points = _grid_points(grid)
  configs = [_with_section(base, channel, p) for p in points]
  k = max(cutoffs)
  missing = classical.unavailable(assets.tables.spec.num_items, base.ease)
  if channel in missing:
    raise ValueError(missing[channel] + " Drop it from the tuning grids.")
  if channel == names.FUSED:
    return _fusion_search(assets, users, points, configs, base, metric,
                          cutoffs, exclude_history, batch_size, missing,
                          fusion_folds, prior_margin)
  if channel in names.CLASSICAL_CHANNELS or channel == names.U2I:
    rankings = _built_rankings(assets, users, channel, configs, k,
                               exclude_history, batch_size)
  else:
    rankings = _rankings(assets, users, channel, configs, base, k,
                         exclude_history, batch_size)
  table, best = [], None
  for params, config, ids in zip(points, configs, rankings):
    values = metric_lib.retrieval_metrics(ids, users.targets, cutoffs)
    table.append({**params, **values})
    if best is None or values[metric] > best[2]:
      best = (params, config, values[metric])
  return GridSearchResult(best_config=best[1], best_params=best[0],
                          best_value=best[2], rows=table)


class _RuleScores:
  """Each fusion rule's metrics on the tuning users, fused once a rule.

  Calling it with a ``ChannelConfig`` gives ``(per-user values of the
  selected metric in percent, {metric: mean in percent})``; rules that
  compute the same list (``_fusion_key``) share one entry.
  """

  def __init__(self, lists, targets, k: int, metric: str,
               cutoffs: Sequence[int]):
    self._lists, self._targets, self._k = lists, targets, k
    self.metric, self._cutoffs = metric, cutoffs
    self._cache: Dict[Any, Tuple[np.ndarray, Dict[str, float]]] = {}

  def __call__(self, config: ChannelConfig):
    key = _fusion_key(config.fusion)
    if key not in self._cache:
      per_user = metric_lib.per_user_metrics(
          _fuse(self._lists, config, self._k), self._targets, self._cutoffs)
      means = {name: float(100.0 * values.mean())
               for name, values in per_user.items()}
      self._cache[key] = (100.0 * per_user[self.metric], means)
    return self._cache[key]


def _family_members(configs: Sequence[ChannelConfig]) -> Dict[str, np.ndarray]:
  """Which grid rules each family of ``FUSION_FAMILIES`` may choose (the
  refined family starts from the grid's best); a family with no member, or
  with the members of a simpler one, is left out."""
  sizes = np.array([len(c.fusion.channels) for c in configs])
  out: Dict[str, np.ndarray] = {}
  for family, mask in (("single", sizes == 1), ("pairs", sizes <= 2),
                       ("grid", np.ones(len(configs), bool))):
    if mask.any() and not any((mask == m).all() for m in out.values()):
      out[family] = mask
  out["refined"] = np.ones(len(configs), bool)
  return out


def _cross_validated_families(scores: _RuleScores,
                              configs: Sequence[ChannelConfig],
                              members: Mapping[str, np.ndarray], folds: int,
                              refine_kwargs: Mapping[str, Any]
                              ) -> Dict[str, float]:
  """Each family's held-out metric: on each of ``folds`` folds of the
  users (a fixed shuffle), the family's best rule on the other folds (for
  ``refined``: the grid's best, refined on the other folds) scores the
  held-out users; the mean over all users of those held-out values."""
  vectors = np.stack([scores(c)[0] for c in configs])
  num_users = vectors.shape[1]
  fold_of = np.random.default_rng(0).permutation(num_users) % folds
  held = {family: np.zeros(num_users) for family in members}
  for fold in range(folds):
    train, test = fold_of != fold, fold_of == fold
    train_means = vectors[:, train].mean(axis=1)
    for family, mask in members.items():
      best = int(np.flatnonzero(mask)[np.argmax(train_means[mask])])
      if family == "refined":
        config, _, _ = _refine(scores, configs[best],
                               float(train_means[best]), train,
                               **refine_kwargs)
        held[family][test] = scores(config)[0][test]
      else:
        held[family][test] = vectors[best, test]
  return {family: float(values.mean()) for family, values in held.items()}


def _fusion_search(assets, users, points, configs, base, metric, cutoffs,
                   exclude_history, batch_size, missing,
                   folds, prior_margin) -> GridSearchResult:
  """The fusion grid (distinct rules only, channels the catalogue is too
  large for left out), its complexity chosen on ``folds`` folds of the
  users, then the chosen family's best rule on all of them."""
  left_out = sorted({c for config in configs for c in config.fusion.channels
                     if c in missing})
  for c in left_out:
    console.status(missing[c])
  kept, seen = [], set()
  for params, config in zip(points, configs):
    key = _fusion_key(config.fusion)
    if key in seen or any(c in missing for c in config.fusion.channels):
      continue
    seen.add(key)
    kept.append((params, config))
  if not kept:
    raise ValueError("No fusion rule of the grid can be built here: every "
                     f"one names a channel left out ({left_out}).")
  k = max(cutoffs)
  channels = [c for c in names.FUSABLE if c not in missing]
  # Every available channel: the refinement may add one the grid lacks.
  lists = _fusion_lists(assets, users, channels, base, k, exclude_history,
                        batch_size)
  scores = _RuleScores(lists, users.targets, k, metric, cutoffs)
  table = []
  for params, config in console.track(kept, "fusion tuning",
                                      unit="rules"):
    table.append({**params, **scores(config)[1]})
  kept_configs = [c for _, c in kept]
  values = np.array([row[metric] for row in table])
  summary = _fusion_summary(kept_configs, table, metric)
  grid_index = int(np.argmax(values))
  grid_best = kept_configs[grid_index]
  refine_kwargs = dict(channels=channels, rounds=2, factors=REFINE_FACTORS)
  members = _family_members(kept_configs)
  num_users = len(users.targets)
  if folds >= 2 and num_users >= 2 * folds:
    family_values = _cross_validated_families(scores, kept_configs, members,
                                              folds, refine_kwargs)
    family = max(family_values, key=lambda f: (family_values[f],
                                               -list(members).index(f)))
  else:
    family_values, family = {}, "refined"
  steps = []
  if family == "refined":
    best_config, best_value, steps = _refine(
        scores, grid_best, float(values[grid_index]), None, **refine_kwargs)
  else:
    index = int(np.flatnonzero(members[family])[
        np.argmax(values[members[family]])])
    best_config, best_value = kept_configs[index], float(values[index])
  for config, row in steps:
    table.append({**config.fusion.to_dict(), "refined": True, **row})
  refined = best_config.fusion != grid_best.fusion and family == "refined"
  prior_summary = {}
  prior = _prior_rule(base, channels)
  if prior_margin is not None and prior is not None:
    keep_prior, prior_summary = _against_prior(scores, best_config, prior,
                                               prior_margin)
    table.append({**prior.fusion.to_dict(), "prior": True,
                  **scores(prior)[1]})
    if keep_prior:
      best_config, best_value = prior, scores(prior)[1][metric]
      refined = False
  summary.update(grid_best=grid_best.fusion.describe(),
                 grid_best_value=float(values[grid_index]),
                 family=family, family_values=family_values, folds=(
                     folds if family_values else 0),
                 chosen=best_config.fusion.describe(),
                 chosen_value=best_value,
                 refined=refined,
                 channels_used=list(best_config.fusion.channels),
                 left_out=left_out, **prior_summary)
  params = best_config.fusion.to_dict()
  return GridSearchResult(best_config=best_config, best_params=params,
                          best_value=best_value, rows=table, summary=summary)


def _prior_rule(base: ChannelConfig, channels: Sequence[str]
                ) -> Optional[ChannelConfig]:
  """``PRIOR_FUSION`` over the channels of ``channels`` (None if none)."""
  weights = [[c, w] for c, w in PRIOR_FUSION.weights.items()
             if c in channels]
  if not weights:
    return None
  return base.replace(fusion=dataclasses.replace(PRIOR_FUSION,
                                                 weights=weights))


def _against_prior(scores, chosen: ChannelConfig, prior: ChannelConfig,
                   margin: float) -> Tuple[bool, Dict[str, Any]]:
  """Whether to serve ``prior`` instead of the search's ``chosen`` rule:
  yes unless ``chosen`` beats it on the tuning users by more than
  ``margin`` standard errors of the per-user difference."""
  difference = scores(chosen)[0] - scores(prior)[0]
  n = len(difference)
  se = (float(difference.std(ddof=1) / np.sqrt(n)) if n > 1
        else float("inf"))
  mean = float(difference.mean())
  keep_prior = not mean > margin * se
  return keep_prior, {
      "prior": prior.fusion.describe(),
      "prior_value": scores(prior)[1][scores.metric],
      "prior_margin": margin, "search_minus_prior": mean,
      "search_minus_prior_se": se, "kept_prior": keep_prior}


def _refine(scores: _RuleScores, start: ChannelConfig, start_value: float,
            rows: Optional[np.ndarray], channels: Sequence[str], rounds: int,
            factors: Sequence[float]):
  """``refine_fusion``'s coordinate ascent on the users ``rows`` selects
  (all when None); returns ``(best, its value, [(config, means)])``."""
  def value(config):
    per_user, means = scores(config)
    return means[scores.metric] if rows is None else float(
        per_user[rows].mean())
  best, best_value, tried, seen = start, start_value, [], set()
  seen.add(_fusion_key(start.fusion))
  for _ in range(rounds):
    changed = False
    for c in channels:
      weights = dict(best.fusion.weights)
      mean = float(np.mean(list(weights.values())))
      for factor in factors:
        trial = dict(weights)
        trial[c] = weights.get(c, mean) * factor
        trial = {name: w for name, w in trial.items() if w > 0}
        if not trial:
          continue
        config = best.replace(fusion=dataclasses.replace(
            best.fusion, weights=[[n, trial[n]] for n in channels
                                  if n in trial]))
        key = _fusion_key(config.fusion)
        if key in seen:
          continue
        seen.add(key)
        trial_value = value(config)
        tried.append((config, scores(config)[1]))
        if trial_value > best_value:
          best, best_value, changed = config, trial_value, True
    if not changed:
      break
  return best, best_value, tried


def refine_fusion(assets: ChannelAssets, users: F.EvalUsers,
                  start: ChannelConfig, start_value: float,
                  metric: str = "recall@50",
                  cutoffs: Sequence[int] = (20, 50),
                  exclude_history: bool = True, batch_size: int = 256,
                  channels: Sequence[str] = names.FUSABLE,
                  lists=None, rounds: int = 2,
                  factors: Sequence[float] = REFINE_FACTORS):
  """Coordinate ascent of the fusion weights on (validation) users.

  From ``start`` (its rule kept), each round visits every channel of
  ``channels``: its weight (for an absent channel, the mean weight of the
  present ones) is scaled by each of ``factors`` (0 drops it), and the best
  change is kept when it raises ``metric``. Stops after ``rounds`` rounds or
  a round without a change. A quota rule changes into a score-free mix the
  same way.

  Returns:
    ``(best config, its metric value, [(config, metrics) of every step
    tried])``.
  """
  k = max(cutoffs)
  if lists is None or any(c not in lists for c in channels):
    lists = _fusion_lists(assets, users, channels, start, k, exclude_history,
                          batch_size)
  scores = _RuleScores(lists, users.targets, k, metric, cutoffs)
  return _refine(scores, start, start_value, None, channels, rounds, factors)


def _fusion_summary(configs: Sequence[ChannelConfig],
                    rows: Sequence[Mapping[str, Any]],
                    metric: str) -> Dict[str, Any]:
  """The best single channel against the best true mix."""
  single, mix = None, None
  for config, row in zip(configs, rows):
    entry = (row[metric], config.fusion.describe())
    if config.fusion.is_single:
      single = entry if single is None or entry[0] > single[0] else single
    else:
      mix = entry if mix is None or entry[0] > mix[0] else mix
  out = {}
  if single:
    out.update(best_single=single[1], best_single_value=single[0])
  if mix:
    out.update(best_mix=mix[1], best_mix_value=mix[0])
  if single and mix:
    out["mix_wins"] = bool(mix[0] > single[0])
  return out


def tune_channels(assets: ChannelAssets, users: F.EvalUsers,
                  grids: Mapping[str, Mapping[str, Sequence[Any]]],
                  base: Optional[ChannelConfig] = None,
                  metric: str = "recall@50",
                  cutoffs: Sequence[int] = (20, 50),
                  exclude_history: bool = True,
                  fusion_folds: int = FUSION_FOLDS,
                  prior_margin: Optional[float] = PRIOR_MARGIN
                  ) -> Tuple[ChannelConfig, Dict[str, GridSearchResult]]:
  """Tunes several channels one after the other (``TUNABLE`` order).

  U2I, U2U, I2I, ItemKNN, UserKNN, EASE, then the fusion; each grid search
  starts from the settings chosen so far, so the fusion is tuned on the tuned
  channels' lists. A channel the catalogue is too large for (EASE above its
  item limit) is skipped with one console line.

  Args:
    assets: The model's ``ChannelAssets``.
    users: The users to tune on (``prepared.valid``).
    grids: Channel (any of ``TUNABLE``) -> grid.
    base: Starting settings (defaults if None).
    metric: Metric to maximise.
    cutoffs: Metric cutoffs.
    exclude_history: Exclude the users' input history.
    fusion_folds: See ``grid_search``.
    prior_margin: See ``grid_search``.

  Returns:
    ``(tuned ChannelConfig, {channel: GridSearchResult})``.

  Raises:
    ValueError: On an unknown channel name (or see ``grid_search``).
  """
  unknown = sorted(set(grids) - set(TUNABLE))
  if unknown:
    raise ValueError(f"Cannot tune {unknown}; tunable channels: {TUNABLE}.")
  config = base or ChannelConfig()
  missing = classical.unavailable(assets.tables.spec.num_items, config.ease)
  results = {}
  for channel in TUNABLE:
    if channel in missing and channel in grids:
      console.status(missing[channel])
      continue
    if channel in grids:
      results[channel] = grid_search(assets, users, channel, grids[channel],
                                     config, metric, cutoffs,
                                     exclude_history,
                                     fusion_folds=fusion_folds,
                                     prior_margin=prior_margin)
      config = results[channel].best_config
  return config, results

"""Grid search of the U2U, I2I and fusion settings on validation users.

The channels' settings (``N``, ``gamma``, ``alpha``, ``M'``, ``M``, the
fusion rule and weights) are chosen on *valid* users, never on test users,
with the channel modules themselves (exact indexes)::

  assets = ChannelAssets(model, prepared.tables, prepared.dataset)
  config, results = tune_channels(assets, prepared.valid, DEFAULT_GRIDS)

U2U and I2I: the channel searches once with the largest ``N`` (or ``M'``
and ``M``) of the grid, then every grid point re-ranks the first ``N`` (or
``M'``, ``M``) with the channel's own ranking, exactly as a channel built
with that point would; grid points that differ in ``alpha`` alone share one
aggregation of their candidates (``Channel.rank_blends``). Fusion: the tuned U2I, U2U and I2I lists are retrieved once and
every candidate rule fuses them (``fusion.fuse_lists``, what the fused
channel runs). The candidates always include each channel alone, so the
chosen fusion is at least as good as the best single channel on the
validation users; ``GridSearchResult.summary`` says whether a true mix won.
"""

import dataclasses
import functools
import itertools
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf import metrics as metric_lib
from mic_tf import names
from mic_tf.channels import fusion
from mic_tf.channels.assets import build_channels
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.evaluate import retrieve_users
from mic_tf.channels.ranking import pad_lists

TUNABLE = (names.U2U, names.I2I, names.FUSED)


def _fusion_weights() -> List[List[List[Any]]]:
  """Each channel alone, then mixes of two or three (weights 1 or 2)."""
  channels = names.BASE_CHANNELS
  out = [[[c, 1.0]] for c in channels]
  seen = set()
  for combo in itertools.product((0, 1, 2), repeat=len(channels)):
    used = [w for w in combo if w]
    if len(used) < 2 or tuple(combo) in seen:
      continue
    if len(set(used)) == 1 and used[0] != 1:  # (2, 2, 0) is (1, 1, 0)
      continue
    seen.add(tuple(combo))
    out.append([[c, float(w)] for c, w in zip(channels, combo) if w])
  return out


#: The default grids of ``experiments/evaluate.py`` (small: 18, 18 and 57
#: points).
DEFAULT_GRIDS = {
    names.U2U: {"num_neighbours": [20, 50, 100], "gamma": [1.0, 2.0],
                "alpha": [0.0, 0.5, 1.0]},
    names.I2I: {"num_history_items": [5, 20],
                "num_similar_items": [10, 20, 50],
                "alpha": [0.0, 0.5, 1.0]},
    names.FUSED: {"mode": ["quota", "score", "rrf"],
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
      (``{"best_single": .., "best_single_value": .., "best_mix": ..,
      "best_mix_value": .., "mix_wins": ..}``); empty otherwise.
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


def _fusion_rankings(assets: ChannelAssets, users: F.EvalUsers,
                     configs: Sequence[ChannelConfig], base: ChannelConfig,
                     k: int, exclude_history: bool,
                     batch_size: int) -> List[np.ndarray]:
  """Each fusion config's ids from the base channels' lists (retrieved once)."""
  modules = build_channels(assets, names.BASE_CHANNELS, k, names.EXACT, base,
                           exclude_history)
  lists = {c: tuple(tf.constant(x) for x in retrieve_users(m, users,
                                                           batch_size))
           for c, m in modules.items()}
  # Eagerly: each rule would be a trace of its own.
  return [fusion.fuse_lists(lists, c.fusion, k)[0].numpy() for c in configs]


def grid_search(assets: ChannelAssets, users: F.EvalUsers, channel: str,
                grid: Mapping[str, Sequence[Any]],
                base: Optional[ChannelConfig] = None,
                metric: str = "recall@50",
                cutoffs: Sequence[int] = (20, 50),
                exclude_history: bool = True,
                batch_size: int = 256) -> GridSearchResult:
  """Picks one channel's settings on (validation) users.

  Args:
    assets: The model's ``ChannelAssets``.
    users: The users to tune on (``prepared.valid``).
    channel: ``"u2u"``, ``"i2i"`` or ``"fused"``.
    grid: Field of ``U2UConfig`` / ``I2IConfig`` / ``FusionConfig`` ->
      candidate values; every combination is tried.
    base: Settings of everything not in the grid (defaults if None).
    metric: Metric to maximise (a ``mic_tf.metrics`` name, e.g.
      ``"recall@50"``); ties keep the earlier grid point.
    cutoffs: Metric cutoffs; must include the metric's.
    exclude_history: Exclude the users' input history (as evaluated).
    batch_size: Users per batch.

  Returns:
    The ``GridSearchResult``.

  Raises:
    ValueError: On an unknown channel, field or metric, or an empty grid.
  """
  if channel not in TUNABLE:
    raise ValueError(f"channel must be one of {TUNABLE}, got {channel!r}.")
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
  if channel == names.FUSED:
    rankings = _fusion_rankings(assets, users, configs, base, k,
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
  summary = {}
  if channel == names.FUSED:
    summary = _fusion_summary(configs, table, metric)
  return GridSearchResult(best_config=best[1], best_params=best[0],
                          best_value=best[2], rows=table, summary=summary)


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
                  exclude_history: bool = True
                  ) -> Tuple[ChannelConfig, Dict[str, GridSearchResult]]:
  """Tunes several channels one after the other (U2U, I2I, then fusion).

  Each channel's grid search starts from the settings chosen so far, so the
  fusion is tuned on the tuned U2U and I2I lists.

  Args:
    assets: The model's ``ChannelAssets``.
    users: The users to tune on (``prepared.valid``).
    grids: Channel (``"u2u"``, ``"i2i"``, ``"fused"``) -> grid.
    base: Starting settings (defaults if None).
    metric: Metric to maximise.
    cutoffs: Metric cutoffs.
    exclude_history: Exclude the users' input history.

  Returns:
    ``(tuned ChannelConfig, {channel: GridSearchResult})``.

  Raises:
    ValueError: On an unknown channel name (or see ``grid_search``).
  """
  unknown = sorted(set(grids) - set(TUNABLE))
  if unknown:
    raise ValueError(f"Cannot tune {unknown}; tunable channels: {TUNABLE}.")
  config = base or ChannelConfig()
  results = {}
  for channel in TUNABLE:
    if channel in grids:
      results[channel] = grid_search(assets, users, channel, grids[channel],
                                     config, metric, cutoffs,
                                     exclude_history)
      config = results[channel].best_config
  return config, results

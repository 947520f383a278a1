"""Grid search of the U2U, I2I or fusion settings on validation users.

The settings of the channels (``N``, ``alpha``, ``gamma``, ``M'``, ``M``, the
fusion weights, ...) are chosen on *valid* users, never on test users::

  context = evaluate.build_context(model, prepared, users="valid")
  result = grid_search(context, "u2u", {"num_neighbours": [20, 50],
                                        "alpha": [0.0, 0.5, 1.0]})
  config = result.best_config   # a ChannelConfig with the best U2U settings

The neighbour searches run once, with the largest ``N`` (or ``M'`` and
``M``) of the grid; every grid point only re-ranks. For the fusion the three
channel lists are retrieved once with the base settings.
"""

import dataclasses
import itertools
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import numpy as np

from mic_tf import evaluation
from mic_tf import metrics as metric_lib
from mic_tf.channels import fusion
from mic_tf.channels.config import BASE_CHANNELS
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.evaluate import build_channels
from mic_tf.channels.evaluate import EvaluationContext
from mic_tf.channels.evaluate import retrieve_channels

TUNABLE = ("u2u", "i2i", "fused")


@dataclasses.dataclass
class GridSearchResult:
  """Outcome of ``grid_search``.

  Attributes:
    best_config: The base ``ChannelConfig`` with the best grid point.
    best_params: That grid point.
    best_value: Its metric value.
    rows: Every grid point with its metrics, in grid order.
  """
  best_config: ChannelConfig
  best_params: Dict[str, Any]
  best_value: float
  rows: List[Dict[str, Any]]


def _grid_points(grid: Mapping[str, Sequence[Any]]) -> List[Dict[str, Any]]:
  if not grid:
    raise ValueError("grid is empty: map at least one setting to its "
                     "candidate values, e.g. {'alpha': [0.0, 0.5, 1.0]}.")
  for name, values in grid.items():
    if isinstance(values, (str, bytes)) or not len(values):
      raise ValueError(f"grid[{name!r}] must be a non-empty list of values, "
                       f"got {values!r}.")
  names = list(grid)
  return [dict(zip(names, combo))
          for combo in itertools.product(*(grid[n] for n in names))]


def _section(config: ChannelConfig, channel: str):
  return config.fusion if channel == "fused" else getattr(config, channel)


def _with_section(config: ChannelConfig, channel: str,
                  params: Mapping[str, Any]) -> ChannelConfig:
  name = "fusion" if channel == "fused" else channel
  section = _section(config, channel)
  fields = {f.name for f in dataclasses.fields(section)}
  unknown = sorted(set(params) - fields)
  if unknown:
    raise ValueError(f"{unknown} are not {type(section).__name__} fields; "
                     f"tunable fields: {sorted(fields)}.")
  return config.replace(**{name: dataclasses.replace(section, **params)})


def _ranker(context: EvaluationContext, channel: str,
            configs: Sequence[ChannelConfig], base: ChannelConfig, k: int,
            batch_size: int) -> Callable[[ChannelConfig], np.ndarray]:
  """Searches once for every grid point; returns config -> ranked ids."""
  queries = context.queries
  objects = build_channels(context.assets, context.indexes, base, batch_size)
  if channel == "u2u":
    largest = max(c.u2u.num_neighbours for c in configs)
    rows, sims = objects["u2u"].search(queries, largest)
    by_history_len = {}  # neighbour histories depend on history_len only

    def rank_u2u(config):
      key = config.u2u.history_len
      if key not in by_history_len:
        by_history_len[key] = objects["u2u"].with_config(config.u2u)
      return by_history_len[key].rank(queries, rows, sims, k,
                                       config=config.u2u)[0]
    return rank_u2u
  if channel == "i2i":
    searched = objects["i2i"].search(
        queries, max(c.i2i.num_history_items for c in configs),
        max(c.i2i.num_similar_items for c in configs))
    return lambda config: objects["i2i"].rank(queries, *searched, k,
                                              config=config.i2i)[0]
  lists = retrieve_channels(objects, queries, k, BASE_CHANNELS, base.fusion)
  return lambda config: fusion.fuse(lists, config.fusion, k)[0]


def grid_search(context: EvaluationContext, channel: str,
                grid: Mapping[str, Sequence[Any]],
                base: Optional[ChannelConfig] = None,
                metric: str = "recall@50",
                cutoffs: Sequence[int] = (20, 50),
                batch_size: int = 256) -> GridSearchResult:
  """Picks one channel's settings on the context's (validation) users.

  Args:
    context: From ``evaluate.build_context(..., users="valid")``.
    channel: ``"u2u"``, ``"i2i"`` or ``"fused"``.
    grid: Field of ``U2UConfig`` / ``I2IConfig`` / ``FusionConfig`` ->
      candidate values; every combination is tried.
    base: Settings of everything not in the grid (defaults if None).
    metric: Metric to maximise (a ``mic_tf.metrics`` name, e.g.
      ``"recall@50"``); ties keep the earlier grid point.
    cutoffs: Metric cutoffs; must include the metric's.
    batch_size: Users per ranking batch.

  Returns:
    The ``GridSearchResult``.

  Raises:
    ValueError: On an unknown channel, field or metric, or an empty grid.
  """
  if channel not in TUNABLE:
    raise ValueError(f"channel must be one of {TUNABLE}, got {channel!r}.")
  cutoffs = metric_lib.check_cutoffs(cutoffs)
  names = [f"{m}@{n}" for m in metric_lib.METRIC_NAMES for n in cutoffs]
  if metric not in names:
    raise ValueError(f"metric {metric!r} is not computed with cutoffs "
                     f"{cutoffs}; choose from {names}.")
  base = base or ChannelConfig()
  points = _grid_points(grid)
  configs = [_with_section(base, channel, p) for p in points]
  run = _ranker(context, channel, configs, base, max(cutoffs), batch_size)
  table, best = [], None
  for params, config in zip(points, configs):
    ids = run(config)
    values = evaluation.evaluate_retrieval(ids, context.targets, cutoffs)
    table.append({**params, **values})
    if best is None or values[metric] > best[2]:
      best = (params, config, values[metric])
  return GridSearchResult(best_config=best[1], best_params=best[0],
                          best_value=best[2], rows=table)


def tune_channels(context: EvaluationContext,
                  grids: Mapping[str, Mapping[str, Sequence[Any]]],
                  base: Optional[ChannelConfig] = None,
                  metric: str = "recall@50",
                  cutoffs: Sequence[int] = (20, 50)
                  ) -> Tuple[ChannelConfig, Dict[str, GridSearchResult]]:
  """Tunes several channels one after the other (U2U, I2I, then fusion).

  Each channel's grid search starts from the settings chosen so far, so the
  fusion is tuned on the tuned U2U and I2I lists.

  Args:
    context: From ``evaluate.build_context(..., users="valid")``.
    grids: Channel (``"u2u"``, ``"i2i"``, ``"fused"``) -> grid.
    base: Starting settings (defaults if None).
    metric: Metric to maximise.
    cutoffs: Metric cutoffs.

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
      results[channel] = grid_search(context, channel, grids[channel], config,
                                     metric, cutoffs)
      config = results[channel].best_config
  return config, results

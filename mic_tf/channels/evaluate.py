"""Per-channel evaluation of a trained model (paper section 3.7, Table 3).

``evaluate_channels(model, prepared, users="test", index="exact")`` encodes
the item pool, the training users and the evaluated users, builds the
channels' indexes (exact or ScaNN), retrieves ``max(cutoffs)`` items per user
in every requested channel and returns the ComiRec metrics of each:
``{"u2i": {"recall@20": ..}, "u2u": {..}, "i2i": {..}, "fused": {..}}``.

With ``index="scann"`` each of U2I, U2U and I2I also reports
``scann_recall@50``: the percentage of the exact top-50 of that channel's
index searches (the same queries, against an exact index) that ScaNN
returned. It measures the index, not the recommendations.

With ``channels=("u2i",)`` and an exact index the U2I numbers equal
``mic_tf.training.evaluate_u2i`` (the numbers in a run's metrics.json).

``mic_tf.channels.report.evaluate_run`` does the same for a finished
training run (``experiments/evaluate.py`` is its command line).
"""

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mic_tf import console
from mic_tf import evaluation
from mic_tf import indexes as index_lib
from mic_tf import metrics as metric_lib
from mic_tf.channels import fusion
from mic_tf.channels.assets import build_channel_assets
from mic_tf.channels.assets import build_channel_indexes
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.assets import ChannelIndexes
from mic_tf.channels.config import BASE_CHANNELS
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.config import CHANNELS
from mic_tf.channels.i2i import I2IChannel
from mic_tf.channels.queries import ChannelQueries
from mic_tf.channels.queries import encode_queries
from mic_tf.channels.u2i import U2IChannel
from mic_tf.channels.u2u import U2UChannel

USER_SETS = ("test", "valid")
INDEX_CHOICES = ("exact", "scann", "both")
RECALL_K = 50
RECALL_KEY = f"scann_recall@{RECALL_K}"


@dataclasses.dataclass
class EvaluationContext:
  """Everything that does not depend on the channel settings.

  Attributes:
    assets: The model's ``ChannelAssets``.
    indexes: The indexes the channels search.
    queries: The evaluated users' ``ChannelQueries``.
    targets: Each evaluated user's target items.
    exact_indexes: Exact indexes for ``scann_recall@50`` (ScaNN runs only).
  """
  assets: ChannelAssets
  indexes: ChannelIndexes
  queries: ChannelQueries
  targets: List[np.ndarray]
  exact_indexes: Optional[ChannelIndexes] = None


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
  if value not in allowed:
    raise ValueError(f"{name} must be one of {tuple(allowed)}, got "
                     f"{value!r}.")


def check_channels(channels: Sequence[str]) -> Tuple[str, ...]:
  """Validates channel names; returns them as a tuple.

  Raises:
    ValueError: On an empty list or an unknown name.
  """
  channels = tuple(channels)
  if not channels:
    raise ValueError(f"No channel requested; choose from {CHANNELS}.")
  unknown = [c for c in channels if c not in CHANNELS]
  if unknown:
    raise ValueError(f"Unknown channel(s) {unknown}; choose from {CHANNELS}.")
  return channels


def build_context(model, prepared, users: str = "test", index: str = "exact",
                  exclude_history: bool = True,
                  scann_configs: Optional[Mapping[str, Any]] = None,
                  k: int = 50,
                  assets: Optional[ChannelAssets] = None
                  ) -> EvaluationContext:
  """Encodes and indexes everything one evaluation needs.

  Args:
    model: A trained ``MICModel``.
    prepared: The run's ``mic_tf.training.Prepared`` data.
    users: ``"test"`` or ``"valid"``.
    index: ``"exact"`` or ``"scann"``.
    exclude_history: Never return a user's input history items.
    scann_configs: Optional per-index ``ScannConfig`` (see
      ``build_channel_indexes``).
    k: Typical neighbours per search (sizes ``ScannConfig.auto``).
    assets: Reuse already computed assets of this model.

  Returns:
    The ``EvaluationContext``.

  Raises:
    ValueError: On an unknown user set or index kind.
  """
  _check_choice("users", users, USER_SETS)
  _check_choice("index", index, ("exact", "scann"))
  assets = assets or build_channel_assets(model, prepared.tables,
                                          prepared.dataset)
  eval_users = getattr(prepared, users)
  queries = encode_queries(
      model, eval_users.features,
      exclude=eval_users.histories if exclude_history else None)
  built = build_channel_indexes(assets, index, k=k,
                                scann_configs=scann_configs)
  exact = None
  if index == "scann":
    exact = build_channel_indexes(assets, "exact")
  return EvaluationContext(assets, built, queries, list(eval_users.targets),
                           exact)


def build_channels(assets: ChannelAssets, built: ChannelIndexes,
                   config: Optional[ChannelConfig] = None,
                   batch_size: int = 256) -> Dict[str, Any]:
  """The U2I, U2U and I2I channel objects over built indexes."""
  config = config or ChannelConfig()
  return {
      "u2i": U2IChannel(built.items, batch_size),
      "u2u": U2UChannel(built.users, assets.train_users,
                        assets.train_sequences, assets.item_shared,
                        config.u2u, batch_size),
      "i2i": I2IChannel(built.item_space, assets.item_space,
                        assets.item_shared, config.i2i, batch_size),
  }


def retrieve_channels(channel_objects: Mapping[str, Any],
                      queries: ChannelQueries, k: int,
                      channels: Sequence[str] = CHANNELS,
                      fusion_config: Optional[fusion.FusionConfig] = None
                      ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """Top-``k`` lists of the requested channels (fused needs its inputs).

  Returns:
    Channel name -> ``(ids, scores)``; includes the base channels the
    fusion needed even if they were not requested.
  """
  fusion_config = fusion_config or fusion.FusionConfig()
  needed = [c for c in channels if c in BASE_CHANNELS]
  if "fused" in channels:
    needed += [c for c in fusion_config.channels if c not in needed]
  unknown = [c for c in needed if c not in channel_objects]
  if unknown:
    raise ValueError(f"No channel object for {unknown}; fusion weights may "
                     f"only name {sorted(channel_objects)}.")
  out = {c: channel_objects[c].retrieve(queries, k)
         for c in console.track(needed, "channel retrieval", unit="channels")}
  if "fused" in channels:
    out["fused"] = fusion.fuse(out, fusion_config, k)
  return out


def index_recall(channel, exact_index: index_lib.Index,
                 queries: ChannelQueries, k: int = RECALL_K) -> float:
  """Percent of the exact top-``k`` of a channel's searches its index found."""
  vectors = channel.index_queries(queries)
  if len(vectors) == 0:
    return 100.0
  k = min(k, exact_index.size)
  approx, _ = channel.index.search(vectors, k)
  exact, _ = exact_index.search(vectors, k)
  return 100.0 * index_lib.recall_against_exact(approx, exact)


def evaluate_context(context: EvaluationContext,
                     channel_config: Optional[ChannelConfig] = None,
                     channels: Sequence[str] = CHANNELS,
                     cutoffs: Sequence[int] = (20, 50),
                     batch_size: int = 256) -> Dict[str, Dict[str, float]]:
  """Metrics of each requested channel on a built context."""
  channels = check_channels(channels)
  cutoffs = metric_lib.check_cutoffs(cutoffs)
  config = channel_config or ChannelConfig()
  objects = build_channels(context.assets, context.indexes, config,
                           batch_size)
  lists = retrieve_channels(objects, context.queries, max(cutoffs), channels,
                            config.fusion)
  results = {}
  for name in channels:
    results[name] = evaluation.evaluate_retrieval(lists[name][0],
                                                  context.targets, cutoffs)
  if context.exact_indexes is not None:
    exact = context.exact_indexes
    exact_of = {"u2i": exact.items, "u2u": exact.users,
                "i2i": exact.item_space}
    for name in channels:
      if name in exact_of:
        results[name][RECALL_KEY] = index_recall(
            objects[name], exact_of[name], context.queries)
  return results


def evaluate_channels(model, prepared, users: str = "test",
                      index: str = "exact",
                      channel_config: Optional[ChannelConfig] = None,
                      cutoffs: Sequence[int] = (20, 50),
                      channels: Sequence[str] = CHANNELS,
                      exclude_history: bool = True,
                      scann_configs: Optional[Mapping[str, Any]] = None,
                      batch_size: int = 256,
                      assets: Optional[ChannelAssets] = None
                      ) -> Dict[str, Dict[str, float]]:
  """Evaluates each retrieval channel of a trained model.

  Args:
    model: A trained ``MICModel``.
    prepared: The run's ``mic_tf.training.Prepared`` data.
    users: ``"test"`` or ``"valid"``.
    index: ``"exact"`` or ``"scann"``.
    channel_config: ``ChannelConfig`` (defaults if None).
    cutoffs: Metric cutoffs; each channel retrieves ``max(cutoffs)`` items.
    channels: Any of ``"u2i", "u2u", "i2i", "fused"``.
    exclude_history: Never return a user's input history (MovieLens: on).
    scann_configs: Optional per-index ``ScannConfig`` for ``index="scann"``.
    batch_size: Users per retrieval batch.
    assets: Reuse already computed ``ChannelAssets`` of this model.

  Returns:
    Channel -> metrics (percent, ``mic_tf.metrics`` names), plus
    ``scann_recall@50`` for U2I / U2U / I2I when ``index="scann"``.

  Raises:
    ValueError: On unknown users, index kind or channel names.
  """
  channels = check_channels(channels)
  cutoffs = metric_lib.check_cutoffs(cutoffs)
  context = build_context(model, prepared, users, index, exclude_history,
                          scann_configs, max(cutoffs), assets)
  return evaluate_context(context, channel_config, channels, cutoffs,
                          batch_size)

"""Offline evaluation of the channels (paper section 3.7, Table 3).

Every number comes from ``Channel.retrieve``: the channel modules that are
exported, on the indexes' numpy path, with the evaluated users' whole input
history excluded (when the run excludes history, as on MovieLens).

* ``evaluate_u2i``: exact U2I metrics of a model, the per-epoch validation
  of training and the test numbers of a run's ``metrics.json``.
* ``evaluate_channels``: the metrics of each requested channel; with a
  ScaNN index each also reports ``scann_recall@50``, the percentage of the
  exact channel's top-50 list (same settings, exact index) that the ScaNN
  channel's top-50 list holds.
"""

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from mic_tf import features as F
from mic_tf import metrics as metric_lib
from mic_tf import names
from mic_tf.channels.assets import build_channels
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.base import Channel
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.encoder import UserEncoder
from mic_tf.channels.u2i import U2IChannel
from mic_tf.models import encode

RECALL_K = 50
RECALL_KEY = f"scann_recall@{RECALL_K}"


def retrieve_users(channel: Channel, users: F.EvalUsers,
                   batch_size: int = 256) -> Tuple[np.ndarray, np.ndarray]:
  """A channel's lists for evaluation users, their input history excluded
  when the channel excludes history."""
  exclude = users.histories if channel.exclude_history else None
  return channel.retrieve(users.features, exclude, batch_size)


def evaluate_u2i(model, users: F.EvalUsers,
                 cutoffs: Sequence[int] = (20, 50),
                 exclude_history: bool = True,
                 batch_size: int = 1024) -> Dict[str, float]:
  """Exact U2I metrics of a model on evaluation users (percent).

  The U2I channel with an exact index, retrieving ``max(cutoffs)`` items.
  """
  cutoffs = metric_lib.check_cutoffs(cutoffs)
  channel = U2IChannel(UserEncoder(model), encode.encode_items(model,
                                                               "shared"),
                       k=max(cutoffs), exclude_history=exclude_history)
  ids, _ = retrieve_users(channel, users, batch_size)
  return metric_lib.retrieval_metrics(ids, users.targets, cutoffs)


def list_recall(approx_ids: np.ndarray, exact_ids: np.ndarray,
                k: int = RECALL_K) -> float:
  """Percent of each exact top-``k`` list found in the approximate one."""
  found = []
  for approx, exact in zip(approx_ids[:, :k], exact_ids[:, :k]):
    truth = exact[exact > 0]
    if truth.size:
      found.append(np.isin(truth, approx[approx > 0]).mean())
  return 100.0 * float(np.mean(found)) if found else 100.0


def evaluate_channels(assets: ChannelAssets, users: F.EvalUsers,
                      channels: Sequence[str] = names.CHANNELS,
                      index: str = names.EXACT,
                      config: Optional[ChannelConfig] = None,
                      cutoffs: Sequence[int] = (20, 50),
                      exclude_history: bool = True,
                      scann_configs: Optional[Mapping] = None,
                      batch_size: int = 256,
                      exact_lists: Optional[Mapping[str, np.ndarray]] = None
                      ) -> Tuple[Dict[str, Dict[str, float]],
                                 Dict[str, np.ndarray]]:
  """Evaluates each requested channel of a model on evaluation users.

  Args:
    assets: The model's ``ChannelAssets``.
    users: The evaluated users (e.g. ``prepared.test``).
    channels: Any of ``"u2i", "u2u", "i2i", "fused"``.
    index: ``"exact"``, ``"scann"`` or ``"auto"``.
    config: ``ChannelConfig`` (defaults if None).
    cutoffs: Metric cutoffs; each channel retrieves ``max(cutoffs)`` items.
    exclude_history: Never return a user's input history (MovieLens: on).
    scann_configs: Optional per-searcher ``ScannConfig``.
    batch_size: Users per retrieval batch.
    exact_lists: The exact index's lists of these channels; with a ScaNN
      index, ``scann_recall@50`` is computed against them (they are
      retrieved when not given).

  Returns:
    ``(metrics, lists)``: channel -> metrics (percent, ``mic_tf.metrics``
    names; plus ``scann_recall@50`` for non-exact indexes) and channel ->
    retrieved ids.

  Raises:
    ValueError: On unknown channels or index kind.
  """
  cutoffs = metric_lib.check_cutoffs(cutoffs)
  k = max(cutoffs)
  modules = build_channels(assets, channels, k, index, config,
                           exclude_history, scann_configs)
  lists = {c: retrieve_users(modules[c], users, batch_size)[0]
           for c in channels}
  results = {c: metric_lib.retrieval_metrics(lists[c], users.targets,
                                             cutoffs)
             for c in channels}
  if index != names.EXACT:
    if exact_lists is None:
      _, exact_lists = evaluate_channels(assets, users, channels, names.EXACT,
                                         config, cutoffs, exclude_history,
                                         batch_size=batch_size)
    for c in channels:
      results[c][RECALL_KEY] = list_recall(lists[c], exact_lists[c],
                                           min(RECALL_K, k))
  return results, lists

"""What the channels are built from, and ``build_channels`` that builds them.

``ChannelAssets`` computes, on first use and once, every vector a trained
model's channels search or score with (all L2-normalised, all compared by
cosine):

* ``item_shared``: items in the shared user-item space (U2I; the user-item
  cosine of U2U and I2I);
* ``item_space``: items in the item space (I2I);
* ``train_user_space``: the training users in the user space (U2U), each
  encoded from the last ``maxlen`` items of its full training sequence and
  its attributes;
* ``train_sequences``: those users' full training sequences (U2U's
  candidates).

``classical_model`` fits (and keeps) the reference model behind a classical
channel (``mic_tf.channels.classical``) on ``train_sequences``.

``build_channels`` turns them into ``Channel`` modules: the objects that
evaluate offline, are tuned on validation users and are exported.
``available_channels`` drops the channels a catalogue is too large for,
with one line saying why.
"""

import dataclasses
import functools
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from mic_tf import features as F
from mic_tf import indexes
from mic_tf import names
from mic_tf.channels import classical
from mic_tf.channels.base import Channel
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.encoder import UserEncoder
from mic_tf.channels.fusion import FusedChannel
from mic_tf.channels.i2i import I2IChannel
from mic_tf.channels.raw_ids import RawIds
from mic_tf.channels.u2i import U2IChannel
from mic_tf.channels.u2u import U2UChannel
from mic_tf.models import encode

#: The searcher of each channel, by the name ``scann_configs`` uses.
INDEX_NAMES = {"items": names.U2I, "users": names.U2U,
               "item_space": names.I2I}


class ChannelAssets:
  """A trained model's vectors, computed lazily (module docstring).

  Args:
    model: A trained ``MICModel``.
    tables: The run's ``FeatureTables``.
    dataset: The run's ``ProcessedDataset``.
    batch_size: Users per forward pass.
  """

  def __init__(self, model, tables: F.FeatureTables, dataset,
               batch_size: int = 1024):
    self.model = model
    self.tables = tables
    self.dataset = dataset
    self.batch_size = batch_size
    self.encoder = UserEncoder(model)
    self._fitted = {}

  @functools.cached_property
  def item_shared(self) -> np.ndarray:
    """``(num_items, d_s)`` float32; row 0 (padding) is zero."""
    return encode.encode_items(self.model, "shared")

  @functools.cached_property
  def item_space(self) -> np.ndarray:
    """``(num_items, d_i)`` float32; row 0 is zero."""
    return encode.encode_items(self.model, "item")

  @functools.cached_property
  def train_sequences(self) -> List[np.ndarray]:
    """Every training user's full sequence, by ascending user id."""
    users = np.sort(np.asarray(self.dataset.train_users, np.int64))
    return [np.asarray(self.dataset.sequences[u], np.int64) for u in users]

  @functools.cached_property
  def train_user_space(self) -> np.ndarray:
    """``(T, d_u)`` float32, aligned with ``train_sequences``."""
    users = np.sort(np.asarray(self.dataset.train_users, np.int64))
    maxlen = self.tables.spec.maxlen
    padded = np.stack([F.pad_history(s, len(s), maxlen)
                       for s in self.train_sequences])
    feats = self.tables.user_features(users, padded)
    return encode.encode_users(self.model, feats, "user", self.batch_size)


  def classical_model(self, name: str, config):
    """The fitted ``mic_tf.baselines`` model of classical channel ``name``
    with ``config`` (the latest one of each channel is kept)."""
    key = dataclasses.astuple(config)
    held = self._fitted.get(name)
    if held is None or held[0] != key:
      self._fitted.pop(name, None)  # free the previous one first
      held = (key, classical.fit_model(name, self.tables.spec.num_items,
                                       self.train_sequences, config))
      self._fitted[name] = held
    return held[1]


def available_channels(channels: Sequence[str], num_items: int,
                       config: Optional[ChannelConfig] = None,
                       say=None) -> tuple:
  """``channels`` without those a catalogue of ``num_items`` is too large for.

  Args:
    channels: Requested channel names.
    num_items: The item vocabulary size.
    config: ``ChannelConfig`` (its ``ease.max_items``).
    say: Called with one line per channel left out (e.g.
      ``mic_tf.console.status``).

  Returns:
    The kept channels, in order.
  """
  config = config or ChannelConfig()
  missing = classical.unavailable(num_items, config.ease)
  kept = []
  for c in channels:
    if c in missing:
      if say is not None:
        say(missing[c])
    else:
      kept.append(c)
  return tuple(kept)


def check_channels(channels: Sequence[str]) -> tuple:
  """Validates channel names; returns them as a tuple.

  Raises:
    ValueError: On an empty list or an unknown name.
  """
  channels = tuple(channels)
  if not channels:
    raise ValueError(f"No channel requested; choose from {names.CHANNELS}.")
  unknown = [c for c in channels if c not in names.CHANNELS]
  if unknown:
    raise ValueError(f"Unknown channel(s) {unknown}; choose from "
                     f"{names.CHANNELS}.")
  return channels


def build_channels(assets: ChannelAssets,
                   channels: Sequence[str] = names.CHANNELS, k: int = 50,
                   index: str = names.EXACT,
                   config: Optional[ChannelConfig] = None,
                   exclude_history: bool = True,
                   scann_configs: Optional[
                       Mapping[str, indexes.ScannConfig]] = None,
                   raw_ids: Optional[RawIds] = None) -> Dict[str, Channel]:
  """The requested channels of one model, as ``Channel`` modules.

  Args:
    assets: The model's ``ChannelAssets``.
    channels: Any of ``names.CHANNELS`` (``"u2i", "u2u", "i2i",
      "itemknn", "userknn", "ease", "fused"``); the fused channel builds
      (and returns) the members its fusion needs.
    k: Items per user.
    index: ``"exact"``, ``"scann"`` or ``"auto"`` (``mic_tf.indexes``).
    config: ``ChannelConfig`` (defaults if None).
    exclude_history: Never return the ``history`` items.
    scann_configs: Optional searcher name (``"items"``, ``"users"``,
      ``"item_space"``) -> ``ScannConfig``; others use
      ``ScannConfig.auto`` (exact below 20k vectors).
    raw_ids: Optional ``RawIds``, for raw-id serving.

  Returns:
    Channel name -> ``Channel``.

  Raises:
    ValueError: On unknown channels, index kind or searcher names, a
      ``k`` larger than the item pool, or a channel the catalogue is too
      large for (``available_channels``).
  """
  channels = check_channels(channels)
  config = config or ChannelConfig()
  scann_configs = dict(scann_configs or {})
  unknown = sorted(set(scann_configs) - set(INDEX_NAMES))
  if unknown:
    raise ValueError(f"Unknown searcher name(s) {unknown} in scann_configs; "
                     f"use {sorted(INDEX_NAMES)}.")
  if scann_configs and index == names.EXACT:
    raise ValueError("scann_configs were given with index='exact'; pass "
                     "index='scann' or drop them.")
  num_items = assets.tables.spec.num_items
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (
      1 <= k < num_items):
    raise ValueError(f"k must be in [1, {num_items - 1}] (the item pool), "
                     f"got {k!r}.")
  needed = [c for c in channels if c in names.FUSABLE]
  if names.FUSED in channels:
    needed += [c for c in config.fusion.channels if c not in needed]
  missing = classical.unavailable(num_items, config.ease)
  for c in needed:
    if c in missing:
      raise ValueError(missing[c] + " Drop it from the channels and the "
                       "fusion weights.")
  common = dict(k=int(k), index=index, exclude_history=exclude_history,
                raw_ids=raw_ids)
  out = {}
  for name in names.FUSABLE:
    if name not in needed:
      continue
    if name in names.CLASSICAL_CHANNELS:
      section = getattr(config, name)
      out[name] = classical.CLASSES[name](
          assets.encoder, assets.train_sequences, section, int(k),
          exclude_history, raw_ids,
          fitted=assets.classical_model(name, section))
    elif name == names.U2I:
      history = config.u2i.history_weight > 0
      out[name] = U2IChannel(assets.encoder, assets.item_shared,
                             scann_config=scann_configs.get("items"),
                             config=config.u2i,
                             item_space=(assets.item_space if history
                                         else None),
                             **common)
    elif name == names.U2U:
      out[name] = U2UChannel(assets.encoder, assets.train_user_space,
                             assets.train_sequences, assets.item_shared,
                             config.u2u,
                             scann_config=scann_configs.get("users"),
                             **common)
    else:
      similarity = (assets.item_space if config.i2i.space == names.ITEM_SPACE
                    else assets.item_shared)
      out[name] = I2IChannel(assets.encoder, similarity,
                             assets.item_shared, config.i2i,
                             scann_config=scann_configs.get("item_space"),
                             **common)
  if names.FUSED in channels:
    out[names.FUSED] = FusedChannel(
        assets.encoder, out, config.fusion, int(k), exclude_history, raw_ids)
  return out

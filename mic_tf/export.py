"""SavedModels of a trained model: the towers and one server per channel.

``export_models(model, prepared, export_dir)`` writes::

  export_dir/
    export.json     what was exported (channels, k, index, settings, inputs)
    user_tower/     signature "user_embedding" (also "serving_default"):
                    user features -> {"user_shared": (B, d_s) or (B, K, d_s),
                                      "user_space": (B, d_u)}
    item_tower/     signature "item_embedding" (also "serving_default"):
                    {"item_id": (B,) int32} -> {"item_shared": (B, d_s),
                                                "item_space": (B, d_i)}
    u2i/ u2u/ i2i/ fused/
                    signature "recommend" (also "serving_default"):
                    user features -> {"item_ids": (B, k) int64,
                                      "scores": (B, k) float32}

Every vector is L2-normalised. The user features are the user tower's
inputs, named as in the run's ``feature_spec.json``: one int32 ``(B,)``
tensor per scalar field (e.g. ``gender``, ``age``; ``user_id`` when the run
used it) and ``history``, int32 ``(B, maxlen)``: the user's last ``maxlen``
item ids, oldest first, left-padded with 0. An empty history (all 0) works:
U2I and U2U then rely on the other fields and I2I returns no item.

Unknown ids: any user field value outside its vocabulary (a user never seen
in training: ``user_id`` must be 0; an item id outside ``1 .. num_items-1``
in the history; an unknown attribute value) is read as 0, "missing". The item
tower maps unknown item ids to 0 the same way (``ItemFeatureLookup``).

Each channel server runs, inside the graph, the same ranking code the
offline evaluation uses (``mic_tf.channels``): the in-graph searches are an
exact matmul + top-k (``index="exact"``) or ScaNN's TensorFlow ops
(``index="scann"``, a ``scann.scann_ops`` searcher trained with the same
``ScannConfig`` as ``mic_tf.indexes.ScannIndex``). The items in the
``history`` input are never returned when ``exclude_history`` was on
(default). Returned lists may be shorter than ``k`` (padded with id -1 and
score -inf), e.g. I2I for an empty history.

Loading: SavedModels with ScaNN contain custom ops, so a fresh process must
``import scann`` before ``tf.saved_model.load`` (``load_serving_model`` does
it, and raises a clear error without scann). Exact servers and the towers
need TensorFlow only::

  import scann  # only for index="scann" servers
  import tensorflow as tf
  server = tf.saved_model.load("export_dir/u2i")
  out = server.signatures["recommend"](history=..., gender=..., age=...)
  out["item_ids"], out["scores"]
"""

import json
import os
import uuid
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf import indexes
from mic_tf.channels import fusion
from mic_tf.channels import ranking
from mic_tf.channels.assets import build_channel_assets
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.config import CHANNELS
from mic_tf.channels.i2i import rank_i2i
from mic_tf.channels.u2i import rank_u2i
from mic_tf.channels.u2u import neighbour_histories
from mic_tf.channels.u2u import rank_u2u

INDEX_KINDS = ("exact", "scann")
USER_TOWER = "user_tower"
ITEM_TOWER = "item_tower"
USER_SIGNATURE = "user_embedding"
ITEM_SIGNATURE = "item_embedding"
RECOMMEND_SIGNATURE = "recommend"
#: Per-SavedModel description, read by ``load_serving_model``.
MODEL_INFO_FILENAME = "mic_tf_model.json"
EXPORT_INFO_FILENAME = "export.json"
_SCANN_SAVE_OPTIONS = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])


def _import_scann():
  try:
    # pylint: disable=g-import-not-at-top,unused-import
    import scann
    from scann.scann_ops.py import scann_ops
    # pylint: enable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise ImportError(
        "This SavedModel holds ScaNN ops: install scann (pip install "
        "scann==1.4.2) and `import scann` before loading it, or export with "
        "index='exact'.") from e
  return scann_ops


# ----------------------------------------------------------------- inputs
def user_input_signature(spec: F.FeatureSpec) -> Dict[str, tf.TensorSpec]:
  """The serving input: one int32 tensor per user field."""
  return {f.name: tf.TensorSpec([None, f.length] if f.is_multivalent else
                                [None], tf.int32, name=f.name)
          for f in spec.user_fields}


def sanitize_user_features(spec: F.FeatureSpec,
                           features: Mapping[str, tf.Tensor]
                           ) -> Dict[str, tf.Tensor]:
  """Maps every id outside its field's vocabulary to 0 (unknown/missing)."""
  out = {}
  for f in spec.user_fields:
    value = tf.cast(features[f.name], tf.int32)
    out[f.name] = tf.where((value >= 0) & (value < f.vocab_size), value, 0)
  return out


def _encode_user(model, features) -> Tuple[tf.Tensor, tf.Tensor]:
  """``(shared (B, K, d_s), user_space (B, d_u))``, unit vectors."""
  rep = model.user_representation(features)
  shared = tf.math.l2_normalize(model.project_user(rep), axis=-1)
  space = tf.math.l2_normalize(model.user_space_summary(rep), axis=-1)
  if shared.shape.rank == 2:
    shared = shared[:, tf.newaxis, :]
  return shared, space


# -------------------------------------------------------------- searchers
class ExactSearcher(tf.Module):
  """In-graph exact dot-product search: matmul + ``tf.math.top_k``.

  Args:
    vectors: ``(n, d)`` database.
    ids: ``(n,)`` int64 id of each row.
  """

  def __init__(self, vectors: np.ndarray, ids: np.ndarray, name=None):
    super().__init__(name=name)
    self.vectors = tf.Variable(np.asarray(vectors, np.float32),
                               trainable=False, name="vectors")
    self.ids = tf.Variable(np.asarray(ids, np.int64), trainable=False,
                           name="ids")

  @property
  def size(self) -> int:
    return int(self.vectors.shape[0])

  def search(self, queries: tf.Tensor, k: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """``(ids, scores)`` of the ``k`` best rows, ``(q, k)``."""
    scores = tf.linalg.matmul(queries, self.vectors, transpose_b=True)
    top = tf.math.top_k(scores, k=k, sorted=True)
    return tf.gather(self.ids, top.indices), top.values


class ScannSearcher(tf.Module):
  """In-graph ScaNN search (``scann.scann_ops``), saved with the model.

  Args:
    vectors: ``(n, d)`` database.
    ids: ``(n,)`` int64 id of each row.
    config: The ``ScannConfig`` (as ``mic_tf.indexes.ScannIndex``); None uses
      ``ScannConfig.auto(n, k)``.
    k: Typical neighbours per search (sizes the auto config).
  """

  def __init__(self, vectors: np.ndarray, ids: np.ndarray,
               config: Optional[indexes.ScannConfig] = None, k: int = 50,
               name=None):
    super().__init__(name=name)
    scann_ops = _import_scann()
    vectors = np.ascontiguousarray(vectors, np.float32)
    self.config = config or indexes.ScannConfig.auto(len(vectors), k)
    builder = scann_ops.builder(vectors, self.config.num_neighbours,
                                "dot_product")
    self.state = self.config.configure(builder).build().serialize_to_module()
    self.ids = tf.Variable(np.asarray(ids, np.int64), trainable=False,
                           name="ids")
    self._size = len(vectors)
    # ScaNN's own `searcher_from_module` leaves the resource's shared_name
    # empty, so two searchers in one SavedModel end up sharing one resource
    # after loading. A unique name keeps them apart (and lets the kernel
    # build each searcher once per process).
    self._shared_name = f"mic_tf_scann/{self.name}/{uuid.uuid4().hex}"

  @property
  def size(self) -> int:
    return self._size

  def _handle(self) -> tf.Tensor:
    s = self.state
    return _import_scann().tensors_to_scann(
        s.dataset, s.scann_config, s.serialized_partitioner,
        s.datapoint_to_token, s.ah_codebook, s.hashed_dataset,
        s.int8_dataset, s.int8_multipliers, s.dp_norms,
        shared_name=self._shared_name)

  def search(self, queries: tf.Tensor, k: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """``(ids, scores)``, ``(q, k)``; missing results are ``(-1, -inf)``."""
    searcher = _import_scann().ScannSearcher(self._handle())
    pre = None
    if self.config.reorder_num_neighbours is not None:
      pre = max(self.config.reorder_num_neighbours, k)
    rows, scores = searcher.search_batched(
        queries, final_num_neighbors=k, pre_reorder_num_neighbors=pre)
    rows = tf.cast(rows, tf.int64)
    ok = (rows >= 0) & (rows < self._size) & ~tf.math.is_nan(scores)
    ids = tf.where(ok, tf.gather(self.ids, tf.where(ok, rows, 0)),
                   tf.constant(ranking.PAD_ID, tf.int64))
    scores = tf.where(ok, scores, ranking.NEG_INF)
    return ranking.pad_to_k(ids, scores, k)


def make_searcher(kind: str, vectors: np.ndarray, ids: np.ndarray,
                  scann_config: Optional[indexes.ScannConfig] = None,
                  k: int = 50, name: Optional[str] = None) -> tf.Module:
  """An ``ExactSearcher`` or a ``ScannSearcher``.

  Raises:
    ValueError: On an unknown kind.
  """
  if kind not in INDEX_KINDS:
    raise ValueError(f"index must be one of {INDEX_KINDS}, got {kind!r}.")
  if kind == "exact":
    return ExactSearcher(vectors, ids, name=name)
  return ScannSearcher(vectors, ids, scann_config, k, name=name)


# ----------------------------------------------------------------- modules
def _track_captures(module: tf.Module, concrete) -> None:
  """Tracks the variables a traced function captured (the model's).

  The Keras model is reached through a closure rather than an attribute,
  so the SavedModel holds the variables the signatures use and not the
  whole Keras object graph (much faster to save and load).
  """
  module.captured_variables = list(concrete.variables)


class UserTowerModule(tf.Module):
  """``user_embedding``: user features -> shared-space and user-space vectors.

  Args:
    model: A trained ``MICModel``.
  """

  def __init__(self, model):
    super().__init__(name="user_tower")
    spec = model.spec

    def user_embedding(features):
      feats = sanitize_user_features(spec, features)
      rep = model.user_representation(feats)
      shared = tf.math.l2_normalize(model.project_user(rep), axis=-1)
      space = tf.math.l2_normalize(model.user_space_summary(rep), axis=-1)
      return {"user_shared": shared, "user_space": space}

    self.user_embedding = tf.function(
        user_embedding, input_signature=[user_input_signature(spec)],
        autograph=False)
    _track_captures(self, self.user_embedding.get_concrete_function())

  def signatures(self) -> Dict[str, Any]:
    fn = self.user_embedding.get_concrete_function()
    return {USER_SIGNATURE: fn, "serving_default": fn}


class ItemTowerModule(tf.Module):
  """``item_embedding``: item ids -> shared-space and item-space vectors.

  Args:
    model: A trained ``MICModel``.
  """

  def __init__(self, model):
    super().__init__(name="item_tower")

    def item_embedding(item_id):
      rep = model.item_representation(item_id)
      return {"item_shared": tf.math.l2_normalize(model.project_item(rep),
                                                  axis=-1),
              "item_space": tf.math.l2_normalize(rep, axis=-1)}

    self.item_embedding = tf.function(
        item_embedding,
        input_signature=[tf.TensorSpec([None], tf.int32, name="item_id")],
        autograph=False)
    _track_captures(self, self.item_embedding.get_concrete_function())

  def signatures(self) -> Dict[str, Any]:
    fn = self.item_embedding.get_concrete_function()
    return {ITEM_SIGNATURE: fn, "serving_default": fn}


class ChannelServer(tf.Module):
  """``recommend``: user features -> top-``k`` items of one channel.

  Args:
    model: A trained ``MICModel``.
    assets: The model's ``ChannelAssets``.
    channel: ``"u2i"``, ``"u2u"``, ``"i2i"`` or ``"fused"``.
    k: Items per user.
    index: ``"exact"`` or ``"scann"``.
    channel_config: ``ChannelConfig``.
    scann_configs: Optional index name (``"items"``, ``"users"``,
      ``"item_space"``) -> ``ScannConfig``.
    exclude_history: Never return the items of the ``history`` input.
  """

  def __init__(self, model, assets: ChannelAssets, channel: str, k: int = 50,
               index: str = "exact",
               channel_config: Optional[ChannelConfig] = None,
               scann_configs: Optional[Mapping[str, Any]] = None,
               exclude_history: bool = True):
    super().__init__(name=f"{channel}_server")
    if channel not in CHANNELS:
      raise ValueError(f"channel must be one of {CHANNELS}, got "
                       f"{channel!r}.")
    if k < 1:
      raise ValueError(f"k must be positive, got {k}.")
    config = channel_config or ChannelConfig()
    scann_configs = dict(scann_configs or {})
    spec = model.spec
    self.channel = channel
    self.k = int(k)
    self.index = index
    needed = (config.fusion.channels if channel == "fused" else (channel,))
    item_ids = np.arange(1, assets.num_items, dtype=np.int64)
    if "u2u" in needed or "i2i" in needed:  # their user-item cosine
      self.item_shared = tf.Variable(assets.item_shared, trainable=False,
                                     name="item_shared")
    if "u2i" in needed:
      self.items = make_searcher(index, assets.item_shared[1:], item_ids,
                                 scann_configs.get("items"), k, "items")
    if "u2u" in needed:
      rows = np.arange(len(assets.train_users), dtype=np.int64)
      self.users = make_searcher(index, assets.train_user_space, rows,
                                 scann_configs.get("users"),
                                 config.u2u.num_neighbours, "users")
      values, splits = neighbour_histories(assets.train_sequences,
                                          config.u2u.history_len)
      self.history_values = tf.Variable(values, trainable=False,
                                        name="history_values")
      self.history_splits = tf.Variable(splits, trainable=False,
                                        name="history_splits")
    if "i2i" in needed:
      self.item_space = tf.Variable(assets.item_space, trainable=False,
                                    name="item_space")
      self.similar_items = make_searcher(
          index, assets.item_space[1:], item_ids,
          scann_configs.get("item_space"), config.i2i.num_similar_items + 1,
          "similar_items")
    rankers = {"u2i": self._u2i, "u2u": self._u2u, "i2i": self._i2i}

    def recommend(features):
      feats = sanitize_user_features(spec, features)
      shared, space = _encode_user(model, feats)
      history = tf.cast(feats[F.HISTORY], tf.int64)
      exclude = (history if exclude_history else
                 tf.zeros([tf.shape(history)[0], 1], tf.int64))
      lists = {c: rankers[c](shared, space, history, exclude, config)
               for c in needed}
      if channel != "fused":
        ids, scores = lists[channel]
      else:
        weights = [config.fusion.weights[c] for c in needed]
        if config.fusion.mode == "quota":
          ids, scores = fusion.fuse_quota([lists[c][0] for c in needed],
                                          weights, self.k)
        else:
          ids, scores = fusion.fuse_scores(
              [lists[c][0] for c in needed], [lists[c][1] for c in needed],
              weights, self.k, config.fusion.normalization)
      return {"item_ids": ids, "scores": scores}

    self.recommend = tf.function(
        recommend, input_signature=[user_input_signature(spec)],
        autograph=False)
    _track_captures(self, self.recommend.get_concrete_function())

  def _u2i(self, shared, space, history, exclude, config):
    del space, history, config
    batch, interests = tf.shape(shared)[0], tf.shape(shared)[1]
    # Over-fetch by the exclusion width so that excluding never shortens
    # the list.
    fetch = min(self.items.size, self.k + int(exclude.shape[1]))
    flat = tf.reshape(shared, [-1, shared.shape[-1]])
    ids, scores = self.items.search(flat, fetch)
    ids = tf.reshape(ids, [batch, interests, fetch])
    scores = tf.reshape(scores, [batch, interests, fetch])
    return rank_u2i(ids, scores, exclude, self.k)

  def _u2u(self, shared, space, history, exclude, config):
    del history
    c = config.u2u
    n = min(c.num_neighbours, self.users.size)
    rows, sims = self.users.search(space, n)
    sims = tf.where(rows >= 0, sims, 0.0)
    return rank_u2u(rows, sims, self.history_values, self.history_splits,
                    shared, self.item_shared, exclude, self.k, c.alpha,
                    c.gamma)

  def _i2i(self, shared, space, history, exclude, config):
    del space
    c = config.i2i
    sources = ranking.last_distinct_items(history, c.num_history_items)
    fetch = min(c.num_similar_items + 1, self.similar_items.size)
    vectors = tf.gather(self.item_space, tf.reshape(sources, [-1]))
    ids, sims = self.similar_items.search(vectors, fetch)
    shape = tf.concat([tf.shape(sources), [fetch]], axis=0)
    has = tf.reshape(sources > 0, [-1, 1])
    ids = tf.reshape(tf.where(has, ids, ranking.PAD_ID), shape)
    sims = tf.reshape(tf.where(has, sims, 0.0), shape)
    return rank_i2i(sources, ids, sims, shared, self.item_shared, exclude,
                    self.k, c.num_similar_items, c.alpha, c.gamma,
                    c.recency_decay)

  def signatures(self) -> Dict[str, Any]:
    fn = self.recommend.get_concrete_function()
    return {RECOMMEND_SIGNATURE: fn, "serving_default": fn}


# ------------------------------------------------------------------ export
def _save(module: tf.Module, path: str, info: Dict[str, Any],
          needs_scann: bool) -> None:
  options = _SCANN_SAVE_OPTIONS if needs_scann else None
  tf.saved_model.save(module, path, signatures=module.signatures(),
                      options=options)
  with open(os.path.join(path, MODEL_INFO_FILENAME), "w") as f:
    json.dump({**info, "needs_scann": needs_scann}, f, indent=1,
              sort_keys=True)


def _check_request(model, channels: Sequence[str], k: int,
                   index: str) -> Tuple[str, ...]:
  channels = tuple(channels)
  unknown = [c for c in channels if c not in CHANNELS]
  if unknown or not channels:
    raise ValueError(f"channels must be a non-empty subset of {CHANNELS}, "
                     f"got {list(channels)}.")
  if index not in INDEX_KINDS:
    raise ValueError(f"index must be one of {INDEX_KINDS}, got {index!r}.")
  if not 1 <= k < model.spec.num_items:
    raise ValueError(f"k must be in [1, {model.spec.num_items - 1}] (the "
                     f"item pool), got {k}.")
  return channels


def build_serving_modules(model, assets: ChannelAssets,
                          channels: Sequence[str] = CHANNELS, k: int = 50,
                          index: str = "exact",
                          channel_config: Optional[ChannelConfig] = None,
                          scann_configs: Optional[Mapping[str, Any]] = None,
                          exclude_history: bool = True
                          ) -> Dict[str, tf.Module]:
  """The modules ``export_models`` saves, usable in memory as they are.

  Args:
    model: A trained ``MICModel``.
    assets: Its ``ChannelAssets``.
    channels: Channel servers to build.
    k: Items per recommendation.
    index: ``"exact"`` or ``"scann"``.
    channel_config: ``ChannelConfig`` (defaults if None).
    scann_configs: Optional per-index ``ScannConfig``.
    exclude_history: Never return the items of the ``history`` input.

  Returns:
    ``{"user_tower": UserTowerModule, "item_tower": ItemTowerModule,
    <channel>: ChannelServer, ...}``.

  Raises:
    ValueError: On unknown channels or index kind, or a bad ``k``.
  """
  channels = _check_request(model, channels, k, index)
  modules = {USER_TOWER: UserTowerModule(model),
             ITEM_TOWER: ItemTowerModule(model)}
  for channel in channels:
    modules[channel] = ChannelServer(model, assets, channel, k, index,
                                     channel_config, scann_configs,
                                     exclude_history)
  return modules


def save_serving_modules(modules: Mapping[str, tf.Module], export_dir: str,
                         info: Optional[Mapping[str, Any]] = None
                         ) -> Dict[str, str]:
  """Saves modules from ``build_serving_modules`` under ``export_dir``.

  Args:
    modules: Name -> module.
    export_dir: Output directory (created).
    info: Written to ``export_dir/export.json`` (with the model names).

  Returns:
    Name -> SavedModel path.
  """
  os.makedirs(export_dir, exist_ok=True)
  paths = {}
  for name, module in modules.items():
    paths[name] = os.path.join(export_dir, name)
    if isinstance(module, ChannelServer):
      details = {"model": name, "signature": RECOMMEND_SIGNATURE,
                 "k": module.k, "index": module.index}
      needs_scann = module.index == "scann"
    else:
      signature = USER_SIGNATURE if name == USER_TOWER else ITEM_SIGNATURE
      details, needs_scann = {"model": name, "signature": signature}, False
    _save(module, paths[name], details, needs_scann)
  summary = {**dict(info or {}),
             "models": {name: os.path.basename(p) for name, p in paths.items()},
             "signatures": {
                 name: (RECOMMEND_SIGNATURE if isinstance(m, ChannelServer)
                        else USER_SIGNATURE if name == USER_TOWER
                        else ITEM_SIGNATURE) for name, m in modules.items()}}
  with open(os.path.join(export_dir, EXPORT_INFO_FILENAME), "w") as f:
    json.dump(summary, f, indent=1, sort_keys=True)
  return paths


def export_info(spec: F.FeatureSpec, channels: Sequence[str], k: int,
                index: str, exclude_history: bool,
                channel_config: ChannelConfig) -> Dict[str, Any]:
  """What ``export.json`` records about an export (inputs and settings)."""
  return {
      "channels": list(channels), "k": k, "index": index,
      "exclude_history": exclude_history,
      "channel_config": channel_config.to_dict(),
      "user_inputs": {f.name: {"shape": [None, f.length] if f.is_multivalent
                               else [None], "dtype": "int32",
                               "vocab_size": f.vocab_size}
                      for f in spec.user_fields},
      "num_items": spec.num_items, "maxlen": spec.maxlen,
  }


def export_models(model, prepared, export_dir: str,
                  channels: Sequence[str] = CHANNELS, k: int = 50,
                  index: str = "exact",
                  channel_config: Optional[ChannelConfig] = None,
                  scann_configs: Optional[Mapping[str, Any]] = None,
                  exclude_history: bool = True,
                  assets: Optional[ChannelAssets] = None) -> Dict[str, str]:
  """Exports the towers and one serving model per channel.

  Args:
    model: A trained ``MICModel``.
    prepared: The run's ``mic_tf.training.Prepared`` data (for the training
      users and the item pool); unused when ``assets`` is given.
    export_dir: Output directory (created; existing models are replaced).
    channels: Channels to export (any of ``"u2i", "u2u", "i2i", "fused"``).
    k: Items per recommendation.
    index: ``"exact"`` or ``"scann"``.
    channel_config: ``ChannelConfig`` (defaults if None).
    scann_configs: Optional per-index ``ScannConfig``.
    exclude_history: Never return the items of the ``history`` input.
    assets: Precomputed ``ChannelAssets`` of this model.

  Returns:
    Name (``"user_tower"``, ``"item_tower"``, channel names) -> SavedModel
    path.

  Raises:
    ValueError: On unknown channels or index kind, or ``k`` too large.
  """
  channels = _check_request(model, channels, k, index)
  config = channel_config or ChannelConfig()
  assets = assets or build_channel_assets(model, prepared.tables,
                                          prepared.dataset)
  modules = build_serving_modules(model, assets, channels, k, index, config,
                                  scann_configs, exclude_history)
  info = export_info(model.spec, channels, k, index, exclude_history, config)
  return save_serving_modules(modules, export_dir, info)


def export_run(run_dir: str, export_dir: str,
               channels: Sequence[str] = CHANNELS, k: int = 50,
               index: str = "exact",
               channel_config: Optional[ChannelConfig] = None,
               prepared=None) -> Dict[str, str]:
  """Exports a finished run (``experiments/train.py``); see ``export_models``.

  The history exclusion follows the run's ``exclude_history``.

  Raises:
    FileNotFoundError: If ``run_dir`` holds no finished run.
  """
  from mic_tf import training  # pylint: disable=g-import-not-at-top
  run_config, prepared, model = training.load_run(run_dir, prepared)
  return export_models(model, prepared, export_dir, channels, k, index,
                       channel_config,
                       exclude_history=run_config.exclude_history)


def load_serving_model(path: str) -> Any:
  """Loads an exported SavedModel, importing ScaNN first when it needs it.

  Args:
    path: One exported model directory (e.g. ``export_dir/u2i``).

  Returns:
    The loaded object; call ``.signatures["recommend"](**features)`` (or
    ``"user_embedding"`` / ``"item_embedding"``).

  Raises:
    FileNotFoundError: If ``path`` holds no SavedModel.
    ImportError: If the model needs scann and it is not installed.
  """
  if not tf.saved_model.contains_saved_model(path):
    raise FileNotFoundError(
        f"No SavedModel in {path!r}: pass one directory written by "
        "export_models (e.g. <export_dir>/u2i).")
  info_path = os.path.join(path, MODEL_INFO_FILENAME)
  needs_scann = True  # Unknown origin: import ScaNN if it is available.
  if os.path.isfile(info_path):
    with open(info_path) as f:
      needs_scann = json.load(f).get("needs_scann", True)
  if needs_scann:
    try:
      _import_scann()
    except ImportError:
      if os.path.isfile(info_path):
        raise
  return tf.saved_model.load(path)


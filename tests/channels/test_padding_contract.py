"""No served or evaluated list holds padding presented as an item.

The contract of an empty slot (``mic_tf.names``, ``mic_tf.channels.ranking``):
a list shorter than ``k`` ends in slots of id ``names.PAD_ID`` (-1) and score
``-inf``, only at its tail; every other slot holds a real item id (``1 ..
num_items - 1``, never ``names.MISSING_ID`` = 0) with a finite score, best
first, distinct, never an excluded item; an empty slot is never counted as a
hit. Served raw ids follow it with the raw padding in place of -1.

Checked for every channel (U2I, U2U, I2I, ItemKNN, UserKNN, EASE) and every
fusion rule, on the
in-graph path (``recommend``, what a SavedModel serves), the offline path
(``retrieve`` and ``evaluate_channels``) and the exported raw-id servers,
for users whose lists are short: ``k`` is the whole item pool less one, so
any excluded history leaves fewer candidates than ``k``; short, empty and
all-excluded histories; unknown item ids and attribute values. The model is
untrained: the contract does not depend on the weights.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import channel_test_lib as lib
import mic_tf  # noqa: F401  (sets the Keras-2 environment first)
from mic_tf import channels
from mic_tf import export
from mic_tf import features as F
from mic_tf import metrics
from mic_tf import names
from mic_tf import runs
from mic_tf import training
from mic_tf.channels import fusion
from mic_tf.channels import i2i
from mic_tf.channels import raw_ids
from mic_tf.channels import u2i
from mic_tf.channels import u2u
from mic_tf.channels.evaluate import list_recall
from mic_tf.models.config import MICConfig
from mic_tf.testing.synthetic import synthetic_dataset

NUM_ITEMS = 31  # 30 real items
K = NUM_ITEMS - 2  # < the pool (build_channels' bound), > most lists
MAXLEN = 8
FUSIONS = {
    "quota": fusion.FusionConfig(),
    "score_minmax": fusion.FusionConfig(mode="score"),
    "score_rank": fusion.FusionConfig(mode="score", normalization="rank"),
    "rrf": fusion.FusionConfig(mode="rrf"),
}
CONFIG = channels.ChannelConfig(
    u2u=channels.U2UConfig(num_neighbours=2),
    i2i=channels.I2IConfig(num_history_items=2, num_similar_items=2))


def check_lists(ids, scores, num_items=NUM_ITEMS, excluded=None, where=""):
  """Asserts the contract of the module docstring on ``(n, k)`` lists.

  Returns:
    The number of empty slots (callers check the case was exercised).
  """
  ids, scores = np.asarray(ids), np.asarray(scores)
  assert ids.shape == scores.shape, where
  assert not np.any(ids == names.MISSING_ID), (
      f"{where}: the padding id {names.MISSING_ID} is served as an item:\n"
      f"{ids}")
  empty = ids == names.PAD_ID
  real = ~empty
  assert np.all(empty | ((ids >= 1) & (ids < num_items))), (
      f"{where}: ids outside the item pool and not {names.PAD_ID}:\n{ids}")
  assert np.all(scores[empty] == -np.inf), (
      f"{where}: an empty slot has a finite score:\n{ids}\n{scores}")
  assert np.all(np.isfinite(scores[real])), (
      f"{where}: a real item has a non-finite score:\n{ids}\n{scores}")
  counts = real.sum(axis=1)
  tail = np.arange(ids.shape[1])[None, :] >= counts[:, None]
  np.testing.assert_array_equal(empty, tail, err_msg=(
      f"{where}: empty slots are not all at the tail:\n{ids}"))
  for row, (row_ids, row_scores) in enumerate(zip(ids, scores)):
    got = row_ids[real[row]]
    assert len(set(got.tolist())) == got.size, f"{where}: repeats {row_ids}"
    assert np.all(np.diff(row_scores[real[row]]) <= 0), (
        f"{where}: row {row} is not best first: {row_scores}")
    if excluded is not None:
      banned = set(np.asarray(excluded[row]).tolist()) - {0}
      assert not banned & set(got.tolist()), (
          f"{where}: row {row} returns excluded items")
  return int(empty.sum())


@dataclasses.dataclass
class Setup:
  prepared: training.Prepared
  assets: channels.ChannelAssets
  features: dict  # user features of the probe users
  histories: list  # their histories (exclusion lists)
  built: dict  # channel name -> Channel (raw ids on)


def _probe_users(prepared):
  """Evaluated users plus hand-made short, empty, unknown and full ones."""
  valid = prepared.valid.features
  n = 4
  features = {k: np.asarray(v[:n]).copy() for k, v in valid.items()}
  histories = [np.asarray(h, np.int64) for h in prepared.valid.histories[:n]]
  extra = {F.HISTORY: np.zeros((5, MAXLEN), np.int32)}
  extra[F.HISTORY][0, -1] = 3                      # one item
  # row 1: an empty history
  extra[F.HISTORY][2, -3:] = [NUM_ITEMS + 5, 999, 7]  # unknown ids
  extra[F.HISTORY][3, -3:] = [NUM_ITEMS, 10**6, 2**30]  # unknown only
  extra[F.HISTORY][4] = np.arange(1, MAXLEN + 1)   # a full history
  for name in features:
    if name != F.HISTORY:
      extra[name] = np.full(5, 1, np.int32)
      extra[name][2] = 99  # an unknown attribute value
  for name in features:
    features[name] = np.concatenate([features[name], extra[name]])
  histories += [np.asarray([h for h in row if 0 < h < NUM_ITEMS], np.int64)
                for row in extra[F.HISTORY]]
  # The last user excludes every item through its exclusion list.
  histories[-1] = np.arange(1, NUM_ITEMS, dtype=np.int64)
  return features, histories


@pytest.fixture(scope="module")
def setup():
  dataset = synthetic_dataset(num_users=50, num_items=NUM_ITEMS, length=10,
                              seed=5)
  config = training.ExperimentConfig.from_settings(
      dataset="synthetic", batch_size=16, embedding_dim=8, output_dim=8,
      hidden_units=(8,), maxlen=MAXLEN, max_item_users=4, seed=0,
      mic=MICConfig.base(projection_dim=8))
  prepared = training.prepare_data(config, dataset)
  tf.keras.utils.set_random_seed(0)
  model = training.build_model(config, prepared.tables)
  training.build_variables(model, prepared.tables)
  assets = channels.ChannelAssets(model, prepared.tables, dataset)
  raw = channels.RawIds(prepared.tables.spec, dataset)
  built = channels.build_channels(assets, names.CHANNELS, K, names.EXACT,
                                  CONFIG, exclude_history=True, raw_ids=raw)
  features, histories = _probe_users(prepared)
  return Setup(prepared, assets, features, histories, built)


def _fused(setup, mode):
  base = setup.built
  return fusion.FusedChannel(
      base[names.U2I].encoder, {c: base[c] for c in names.BASE_CHANNELS},
      FUSIONS[mode], K, exclude_history=True, raw_ids=base[names.U2I].raw_ids)


def _all_channels(setup):
  out = {c: setup.built[c] for c in names.FUSABLE}
  out.update({f"fused_{m}": _fused(setup, m) for m in FUSIONS})
  return out


def _tf_features(features):
  return {k: tf.constant(v, tf.int32) for k, v in features.items()}


@pytest.mark.parametrize("name", list(names.FUSABLE) + [
    f"fused_{m}" for m in FUSIONS])
def test_in_graph_and_offline_lists_keep_the_contract(setup, name):
  channel = _all_channels(setup)[name]
  exclude = channels.ranking.pad_lists(setup.histories)
  served = channel.recommend(_tf_features(setup.features),
                             tf.constant(exclude))
  empties = check_lists(served[0].numpy(), served[1].numpy(),
                        excluded=setup.histories, where=f"{name} recommend")
  offline = channel.retrieve(setup.features, setup.histories, batch_size=3)
  check_lists(*offline, excluded=setup.histories, where=f"{name} retrieve")
  # The two paths agree up to the order of tied items.
  np.testing.assert_allclose(offline[1], served[1].numpy(), rtol=1e-5,
                             atol=1e-6)
  for a, b in zip(offline[0], served[0].numpy()):
    assert set(a.tolist()) == set(b.tolist()), (name, a, b)
  assert empties > 0  # the case of fewer candidates than k was exercised
  # The user who excludes every item gets an empty list.
  assert np.all(offline[0][-1] == names.PAD_ID)


@pytest.mark.parametrize("mode", list(FUSIONS))
def test_fusion_drops_either_padding_of_its_inputs(mode):
  """Member lists may pad with 0 or -1 (``fuse_*``: ids <= 0 are padding)."""
  u2i = ([[5, 3, 0, 0], [0, 0, 0, 0], [4, 1, 2, 6]],
         [[0.9, 0.5, 0.0, 0.0], [0.0] * 4, [0.9, 0.8, 0.7, 0.6]])
  u2u = ([[3, 7, -1, -1], [8, -1, -1, -1], [6, 4, 0, -1]],
         [[0.7, 0.2, -np.inf, -np.inf], [0.4] + [-np.inf] * 3,
          [0.3, 0.2, -np.inf, -np.inf]])
  i2i = ([[0, -1, -1, -1], [-1, -1, -1, -1], [9, 1, -1, -1]],
         [[0.0] + [-np.inf] * 3, [-np.inf] * 4, [0.5, 0.1] + [-np.inf] * 2])
  lists = {c: (tf.constant(i, tf.int64), tf.constant(s, tf.float32))
           for c, (i, s) in zip(names.BASE_CHANNELS, (u2i, u2u, i2i))}
  for k in (2, 6):
    ids, scores = fusion.fuse_lists(lists, FUSIONS[mode], k)
    check_lists(ids.numpy(), scores.numpy(), num_items=10,
                where=f"{mode} k={k}")
    expected = [{3, 5, 7}, {8}, {1, 2, 4, 6, 9}]
    for row, want in zip(ids.numpy(), expected):
      got = {int(i) for i in row if i != names.PAD_ID}
      assert got <= want and len(got) == min(k, len(want)), (mode, k, row)


@pytest.mark.parametrize("mode", list(FUSIONS))
def test_the_form_of_input_padding_does_not_change_a_fusion(mode):
  """A member list padded with 0 (score 0) fuses as one padded with -1
  (score -inf): padding takes no part in normalising or ranking."""
  ids = [[6, 2, 0, 0], [5, 0, 0, 0]]
  scores = [[0.9, 0.6, 0.0, 0.0], [0.8, 0.0, 0.0, 0.0]]
  other = ([[2, 3, 4, -1], [7, 5, 1, -1]],
           [[0.5, 0.45, 0.1, -np.inf], [0.3, 0.2, 0.1, -np.inf]])

  def fused(pad_id, pad_score):
    padded = np.where(np.array(ids) > 0, ids, pad_id)
    padded_scores = np.where(np.array(ids) > 0, scores, pad_score)
    lists = {names.U2I: (tf.constant(padded, tf.int64),
                         tf.constant(padded_scores, tf.float32)),
             names.U2U: tuple(tf.constant(x) for x in other),
             names.I2I: tuple(tf.constant(x) for x in other)}
    out = fusion.fuse_lists(lists, FUSIONS[mode], 5)
    return out[0].numpy(), out[1].numpy()

  zero, minus = fused(0, 0.0), fused(names.PAD_ID, -np.inf)
  np.testing.assert_array_equal(zero[0], minus[0])
  np.testing.assert_allclose(zero[1], minus[1])


def test_evaluation_never_counts_an_empty_slot(setup):
  """``evaluate_channels`` on users whose lists end in empty slots."""
  users = setup.prepared.valid
  results, lists = channels.evaluate_channels(
      setup.assets, users, names.CHANNELS, names.EXACT, CONFIG,
      cutoffs=(10, K), exclude_history=True)
  for name, ids in lists.items():
    assert not np.any(ids == names.MISSING_ID), name
    assert np.any(ids == names.PAD_ID), name  # short lists were evaluated
    recall = 100 * np.mean([np.isin(t, row[row != names.PAD_ID]).mean()
                            for row, t in zip(ids, users.targets)])
    assert results[name][f"recall@{K}"] == pytest.approx(recall), name


def test_metrics_ignore_empty_slots_beside_a_real_hit():
  """-1 next to a real id must not alias the previous user's items."""
  targets = [np.array([4]), np.array([9])]
  retrieved = np.array([[4, -1], [-1, -1]])
  out = metrics.retrieval_metrics(retrieved, targets, (2,))
  assert out["recall@2"] == pytest.approx(50.0)
  assert out["hr@2"] == pytest.approx(50.0)
  # Scann recall counts real ids of the exact lists only.
  exact = np.array([[4, -1, -1], [9, 2, -1]])
  approx = np.array([[4, -1, -1], [9, -1, -1]])
  assert list_recall(approx, exact, 3) == pytest.approx(75.0)


def _raw_request(setup):
  """The probe users as a raw-id request: ``(features, exclude, to_internal)``.

  Unknown item ids and attribute values become raw values never seen.
  """
  raw = setup.built[names.U2I].raw_ids
  dataset = setup.prepared.dataset
  padding = raw_ids.RAW_PADDING[raw.item_kind]
  raw_items = np.array([padding] + [int(r) for r in dataset.raw_item_ids[1:]],
                       np.int64)
  history = setup.features[F.HISTORY].astype(np.int64)
  inside = (history >= 0) & (history < NUM_ITEMS)
  request = {F.HISTORY: tf.constant(np.where(
      inside, raw_items[np.where(inside, history, 0)], 10**9 + history))}
  for f in setup.prepared.tables.spec.user_fields:
    if f.name == F.HISTORY:
      continue
    vocab = dataset.user_vocabs[f.name]
    if raw.field_kinds[f.name] == raw_ids.INT64:
      cast, unknown, dtype = int, 123456, tf.int64
    else:
      cast, unknown, dtype = str, "never seen", tf.string
    request[f.name] = tf.constant(
        [cast(vocab[v]) if 0 < v < len(vocab) else unknown
         for v in setup.features[f.name]], dtype)
  exclude = [[int(raw_items[i]) for i in h] for h in setup.histories]
  width = max(len(e) for e in exclude)
  exclude = tf.constant([e + [padding] * (width - len(e)) for e in exclude],
                        tf.int64)
  lookup = {int(r): i for i, r in enumerate(raw_items) if i > 0}

  def to_internal(got):
    """Served raw ids -> item ids; the raw padding -> -1 (others fail)."""
    assert np.all((got == padding) | np.isin(got, list(lookup))), got
    return np.vectorize(lambda r: lookup.get(int(r), names.PAD_ID))(got)

  return request, exclude, to_internal


@pytest.mark.parametrize("name", list(names.FUSABLE) + [
    f"fused_{m}" for m in FUSIONS])
def test_raw_id_lists_keep_the_contract(setup, name):
  """``recommend_raw``: the function the exported ``recommend`` traces."""
  request, exclude, to_internal = _raw_request(setup)
  ids, scores = _all_channels(setup)[name].recommend_raw(request, exclude)
  assert check_lists(to_internal(ids.numpy()), scores.numpy(),
                     excluded=setup.histories, where=f"raw {name}") > 0


@pytest.mark.slow
def test_exported_raw_id_servers_keep_the_contract(setup, tmp_path):
  """The SavedModels' ``recommend`` (raw ids in and out), loaded back."""
  paths = runs.export_model(
      setup.assets.model, setup.prepared, str(tmp_path / "export"),
      names.CHANNELS, K, names.EXACT, CONFIG, raw_ids=True)
  request, exclude, to_internal = _raw_request(setup)
  for name in names.CHANNELS:
    model = export.load_serving_model(paths[name])
    out = model.signatures["recommend"](**request, exclude=exclude)
    assert check_lists(to_internal(out["item_ids"].numpy()),
                       out["scores"].numpy(), excluded=setup.histories,
                       where=f"exported {name}") > 0


# Each ranking step takes padding in its inputs (index results of -1, ids of
# 0 from unknown or padded history slots) and must drop it, whichever of its
# guards sees it first. The channels never feed some of these forms today
# (an exact index never returns 0), so each rule is tested on its own.


def test_u2i_drops_padded_index_results():
  ids = tf.constant([[[5, 0, 3, -1]], [[0, -1, -1, -1]]], tf.int64)
  scores = tf.constant([[[0.2, 0.9, 0.1, 0.95]], [[0.9, 0.8, 0.7, 0.6]]])
  got, got_scores = u2i.rank_u2i(ids, scores, tf.zeros([2, 1], tf.int64), 3)
  np.testing.assert_array_equal(got, [[5, 3, -1], [-1, -1, -1]])
  np.testing.assert_allclose(got_scores[0, :2], [0.2, 0.1])
  check_lists(got.numpy(), got_scores.numpy(), num_items=6)


def test_i2i_ignores_padded_sources_and_neighbours():
  sources = tf.constant([[4, 0]], tf.int64)
  # Source 4 found itself, padding 0 (high similarity) and item 2; the empty
  # source slot "found" items 7 and 8, which must not count. With M = 1 the
  # padding must not take the one similar-item slot either.
  ids = tf.constant([[[4, 0, 2], [7, 8, -1]]], tf.int64)
  sims = tf.constant([[[1.0, 0.99, 0.5], [0.9, 0.9, 0.0]]])
  queries = tf.zeros([1, 1, 2])
  table = tf.zeros([10, 2])
  got, scores = i2i.rank_i2i(sources, ids, sims, queries, table,
                             tf.zeros([1, 0], tf.int64), 4, 1, 1.0, 1.0, 1.0)
  np.testing.assert_array_equal(got, [[2, -1, -1, -1]])
  check_lists(got.numpy(), scores.numpy(), num_items=10)


def test_i2i_search_returns_nothing_for_an_empty_source_slot():
  item_space = np.eye(6, dtype=np.float32)[:, :4] + 0.1
  encoder = lib.encoder(np.zeros((1, 2)), 6, history=[[0, 0, 3]])
  channel = i2i.I2IChannel(encoder, item_space, np.zeros((6, 2), np.float32),
                           i2i.I2IConfig(num_history_items=2,
                                         num_similar_items=2), k=3)
  users = encoder({k: tf.constant(v) for k, v in encoder.features().items()})
  sources, ids, sims = channel.search(users, tf.zeros([1, 0], tf.int64))
  np.testing.assert_array_equal(sources, [[3, 0]])
  np.testing.assert_array_equal(ids[0, 1], [names.PAD_ID] * 3)
  np.testing.assert_array_equal(sims[0, 1], [0.0] * 3)


def test_u2u_ignores_padded_neighbours_and_history_slots():
  values, splits = u2u.neighbour_histories([[0, 3, 0, 5], [0, 0]])
  np.testing.assert_array_equal(values, [3, 5])
  np.testing.assert_array_equal(splits, [0, 2, 2])
  # One real neighbour (row 0) and a padded one (-1, high similarity): the
  # padding must neither add candidates nor index a history row.
  got, scores = u2u.rank_u2u(
      tf.constant([[0, -1]], tf.int64), tf.constant([[0.5, 0.9]]),
      tf.constant(values), tf.constant(splits), tf.zeros([1, 1, 2]),
      tf.zeros([7, 2]), tf.zeros([1, 0], tf.int64), 4, 1.0, 1.0)
  np.testing.assert_array_equal(got, [[3, 5, -1, -1]])
  check_lists(got.numpy(), scores.numpy(), num_items=7)


def test_sources_skip_unknown_items_inside_a_history():
  """An unknown id reads as 0 anywhere in a history, not only at its start."""
  out = channels.ranking.last_distinct_items(tf.constant([[5, 0, 3]]), 2)
  np.testing.assert_array_equal(out, [[3, 5]])


def test_a_candidate_scored_minus_infinity_is_an_empty_slot():
  """-inf marks an empty slot, so an item scored -inf is not served."""
  ids, scores = channels.ranking.top_k_per_row(
      tf.constant([0, 0], tf.int64), tf.constant([3, 4], tf.int64),
      tf.constant([0.5, -np.inf]), 1, 3)
  np.testing.assert_array_equal(ids, [[3, -1, -1]])
  check_lists(ids.numpy(), scores.numpy(), num_items=5)

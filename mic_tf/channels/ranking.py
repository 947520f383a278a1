"""Scored (user, item) candidate pairs -> each user's top-k list, in TensorFlow.

Every channel ends the same way: a flat list of candidate pairs
``(row, item, value)`` (``row`` = the user's position in the batch) is
filtered (padding ids and excluded items dropped), aggregated per distinct
``(row, item)`` pair (summed for U2U / I2I weights, maximised when several
interests retrieve one item), scored and cut to the ``k`` best items of each
row. These ops are plain TensorFlow (no Python per user), so evaluation (which
calls them on index results) and the exported serving models (which call
them inside the graph) share one implementation.

Conventions:

* Results are ``(ids, scores)`` of shape ``(B, k)``, int64 / float32, best
  first; slots without a candidate hold id ``-1`` and score ``-inf``.
* Exclusion lists are ``(B, E)`` integer tensors, ``0``-padded.
* Ties are broken towards the smaller item id (pairs are sorted by
  ``(row, item)`` and ``tf.math.top_k`` prefers the lower index), the same
  rule as ``mic_tf.indexes.exact_top_k``.
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import names
from mic_tf.indexes import pad_to_k

PAD_ID = names.PAD_ID
NEG_INF = names.NEG_INF
REDUCERS = ("sum", "max")


def pad_lists(lists: Sequence[np.ndarray],
              width: Optional[int] = None) -> np.ndarray:
  """Right-pads id arrays with 0 into one ``(n, width)`` int64 matrix.

  Args:
    lists: ``n`` integer arrays (e.g. each user's history, for exclusion).
    width: Columns; defaults to the longest list (at least 1).

  Returns:
    An int64 array; row ``i`` starts with ``lists[i]``.

  Raises:
    ValueError: If a list is longer than ``width``.
  """
  arrays = [np.asarray(a, np.int64).reshape(-1) for a in lists]
  longest = max([a.size for a in arrays], default=0)
  width = max(longest, 1) if width is None else int(width)
  if longest > width:
    raise ValueError(f"A list has {longest} ids but width={width}; raise "
                     "width or pass width=None.")
  out = np.zeros((len(arrays), width), np.int64)
  for i, a in enumerate(arrays):
    out[i, :a.size] = a
  return out


def _max_or_zero(x: tf.Tensor) -> tf.Tensor:
  """Largest entry of an int64 tensor, or 0 when it is empty or negative."""
  flat = tf.reshape(x, [-1])
  return tf.reduce_max(tf.concat([flat, tf.zeros([1], flat.dtype)], axis=0))


def is_excluded(rows: tf.Tensor, items: tf.Tensor,
                exclude: tf.Tensor) -> tf.Tensor:
  """Whether each pair's item is in its row's exclusion list.

  Args:
    rows: ``(P,)`` int row of each pair.
    items: ``(P,)`` int item of each pair.
    exclude: ``(B, E)`` int exclusion lists, 0-padded.

  Returns:
    ``(P,)`` bool.
  """
  rows = tf.cast(rows, tf.int64)
  items = tf.cast(items, tf.int64)
  exclude = tf.cast(exclude, tf.int64)
  width = tf.cast(tf.shape(exclude)[1], tf.int64)
  # One int64 key per (row, item); the stride only needs to exceed the ids.
  stride = tf.maximum(_max_or_zero(exclude), _max_or_zero(items)) + 1
  ex_rows = tf.repeat(tf.range(tf.shape(exclude, tf.int64)[0]), width)
  ex_items = tf.reshape(exclude, [-1])
  ex_keys = tf.boolean_mask(ex_rows * stride + ex_items, ex_items > 0)
  # A leading -1 sentinel keeps the sorted table non-empty.
  table = tf.concat([[-1], tf.sort(ex_keys)], axis=0)
  keys = rows * stride + items
  pos = tf.searchsorted(table[tf.newaxis], keys[tf.newaxis], side="left")[0]
  pos = tf.minimum(pos, tf.size(table, out_type=pos.dtype) - 1)
  return tf.gather(table, pos) == keys


def keep_pairs(rows: tf.Tensor, items: tf.Tensor, values: tf.Tensor,
               exclude: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Drops pairs whose item is padding (``<= 0``) or excluded for the row."""
  keep = (items > 0) & ~is_excluded(rows, items, exclude)
  return (tf.boolean_mask(rows, keep), tf.boolean_mask(items, keep),
          tf.boolean_mask(values, keep))


def aggregate(rows: tf.Tensor, items: tf.Tensor, values: tf.Tensor,
              reduce: str = "sum"
              ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Combines the values of repeated ``(row, item)`` pairs.

  Args:
    rows: ``(P,)`` int rows.
    items: ``(P,)`` non-negative int items.
    values: ``(P,)`` float values.
    reduce: ``"sum"`` or ``"max"``.

  Returns:
    ``(rows, items, values)`` of the distinct pairs, sorted by
    ``(row, item)``; rows and items int64, values float32.

  Raises:
    ValueError: On an unknown ``reduce``.
  """
  if reduce not in REDUCERS:
    raise ValueError(f"reduce must be one of {REDUCERS}, got {reduce!r}.")
  rows = tf.cast(rows, tf.int64)
  items = tf.cast(items, tf.int64)
  values = tf.cast(values, tf.float32)
  stride = _max_or_zero(items) + 1
  keys, index = tf.unique(rows * stride + items, out_idx=tf.int64)
  n = tf.size(keys, out_type=tf.int64)
  if reduce == "sum":
    combined = tf.math.unsorted_segment_sum(values, index, n)
  else:
    combined = tf.math.unsorted_segment_max(values, index, n)
  order = tf.argsort(keys)
  keys = tf.gather(keys, order)
  return keys // stride, keys % stride, tf.gather(combined, order)


def normalize_by_row_max(rows: tf.Tensor, values: tf.Tensor,
                         num_rows: tf.Tensor) -> tf.Tensor:
  """``values / max(values of the row)``; 0 where that maximum is <= 0."""
  row_max = tf.math.unsorted_segment_max(values, rows, num_rows)
  denom = tf.gather(row_max, rows)
  return tf.where(denom > 0, values / tf.where(denom > 0, denom, 1.0), 0.0)


#: Pairs scored at a time by ``interest_cosine``.
COSINE_CHUNK = 32_768


def interest_cosine(rows: tf.Tensor, items: tf.Tensor, user_queries: tf.Tensor,
                    item_table: tf.Tensor,
                    chunk: int = COSINE_CHUNK) -> tf.Tensor:
  """``max_k <q_{row,k}, e_item>``: the user-item cosine of each pair.

  Pairs are scored ``chunk`` at a time, so the gathered ``(pairs, K, d)``
  vectors never exceed a chunk: a U2U batch can hold millions of candidate
  pairs at Amazon-Books size (gathering them all at once took gigabytes).

  Args:
    rows: ``(P,)`` int rows.
    items: ``(P,)`` int items (row indices of ``item_table``).
    user_queries: ``(B, K, d)`` unit user queries (``K = 1`` for a
      single-interest tower).
    item_table: ``(num_items, d)`` unit item vectors in the same space.
    chunk: Pairs per step.

  Returns:
    ``(P,)`` float32; for several interests the best one's cosine.
  """
  queries = tf.cast(user_queries, tf.float32)
  table = tf.cast(item_table, tf.float32)
  rows = tf.reshape(rows, [-1])
  items = tf.reshape(items, [-1])
  n = tf.size(rows)
  steps = tf.maximum((n + chunk - 1) // chunk, 1)  # one (empty) if no pair
  scores = tf.TensorArray(tf.float32, size=steps, infer_shape=False,
                          element_shape=tf.TensorShape([None]))

  def body(i, scores):
    start = i * chunk
    stop = tf.minimum(start + chunk, n)
    q = tf.gather(queries, rows[start:stop])
    e = tf.gather(table, items[start:stop])
    return i + 1, scores.write(
        i, tf.reduce_max(tf.einsum("pkd,pd->pk", q, e), axis=1))

  _, scores = tf.while_loop(lambda i, _: i < steps, body, (0, scores))
  return tf.reshape(scores.concat(), [n])


def blend(collaborative: tf.Tensor, cosine: tf.Tensor,
          alpha: tf.Tensor) -> tf.Tensor:
  """``alpha * collaborative + (1 - alpha) * cosine``."""
  alpha = tf.cast(alpha, tf.float32)
  return alpha * collaborative + (1.0 - alpha) * cosine


def top_k_per_row(rows: tf.Tensor, items: tf.Tensor, scores: tf.Tensor,
                  num_rows: tf.Tensor, k: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """The ``k`` best distinct items of every row.

  Args:
    rows: ``(P,)`` int64 rows, sorted ascending (as ``aggregate`` returns).
    items: ``(P,)`` int64 items, distinct within a row and ascending.
    scores: ``(P,)`` float32 scores.
    num_rows: Number of rows ``B`` (rows without pairs get only padding).
    k: Items per row.

  Returns:
    ``(ids, scores)`` of shape ``(B, k)``, padded with ``(-1, -inf)``.
  """
  num_rows = tf.cast(num_rows, tf.int64)
  ragged_scores = tf.RaggedTensor.from_value_rowids(scores, rows, num_rows)
  ragged_items = tf.RaggedTensor.from_value_rowids(items, rows, num_rows)
  dense_scores = ragged_scores.to_tensor(default_value=NEG_INF)
  dense_items = ragged_items.to_tensor(default_value=PAD_ID)
  width = tf.shape(dense_scores)[1]
  top = tf.math.top_k(dense_scores, k=tf.minimum(width, k), sorted=True)
  top_ids = tf.gather(dense_items, top.indices, batch_dims=1)
  top_ids = tf.where(top.values > NEG_INF, top_ids, PAD_ID)
  return pad_to_k(top_ids, top.values, k)


def rank_weighted_pairs(rows: tf.Tensor, items: tf.Tensor, weights: tf.Tensor,
                        exclude: tf.Tensor, user_queries: tf.Tensor,
                        item_table: tf.Tensor, alpha: tf.Tensor,
                        num_rows: tf.Tensor, k: int
                        ) -> Tuple[tf.Tensor, tf.Tensor]:
  """How U2U and I2I rank their collaborative candidates.

  Drops padding and excluded pairs, sums each row's weights per item,
  divides by the row's largest sum, blends that with the interest cosine
  (``alpha`` on the collaborative part) and keeps the ``k`` best items.

  Args:
    rows: ``(P,)`` int64 row (user position in the batch) of every pair.
    items: ``(P,)`` int64 item of every pair.
    weights: ``(P,)`` float32 weight of every pair.
    exclude: ``(B, E)`` excluded items, ``0``-padded.
    user_queries: The users' shared-space queries (``interest_cosine``).
    item_table: ``(num_items, d)`` unit shared-space item vectors.
    alpha: Weight of the collaborative score.
    num_rows: Number of rows ``B``.
    k: Items per row.

  Returns:
    ``(ids, scores)`` of shape ``(B, k)`` (``top_k_per_row``).
  """
  rows, items, values = keep_pairs(rows, items, weights, exclude)
  rows, items, total = aggregate(rows, items, values, reduce="sum")
  collaborative = normalize_by_row_max(rows, total, num_rows)
  cosine = interest_cosine(rows, items, user_queries, item_table)
  return top_k_per_row(rows, items, blend(collaborative, cosine, alpha),
                       num_rows, k)


def popular_items(exclude: tf.Tensor, num_items: int,
                  k: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """The ``k`` most popular items of each row that ``exclude`` allows.

  Item ids follow popularity (id 1 is the most popular training item, the
  protocol's numbering), so these are the lowest allowed ids. Their scores,
  ``-1 - id / num_items``, lie in ``(-2, -1)``: below any cosine blend.

  Args:
    exclude: ``(B, E)`` int exclusion lists, 0-padded.
    num_items: Item vocabulary size (padding included).
    k: Items per row.

  Returns:
    ``(ids, scores)``, ``(B, k)`` (``(-1, -inf)`` past the pool).
  """
  exclude = tf.cast(exclude, tf.int64)
  batch = tf.shape(exclude, out_type=tf.int64)[0]
  widest = tf.reduce_max(tf.concat(
      [tf.reduce_sum(tf.cast(exclude > 0, tf.int64), axis=1), [0]], axis=0))
  count = tf.minimum(tf.constant(num_items - 1, tf.int64), k + widest)
  candidates = tf.range(1, count + 1, dtype=tf.int64)
  rows = tf.repeat(tf.range(batch), count)
  items = tf.tile(candidates, [batch])
  scores = -1.0 - tf.cast(items, tf.float32) / float(num_items)
  rows, items, scores = keep_pairs(rows, items, scores, exclude)
  return top_k_per_row(rows, items, scores, batch, k)


def last_distinct_items(history: tf.Tensor, m: int) -> tf.Tensor:
  """The ``m`` most recent distinct items of padded histories.

  Args:
    history: ``(B, L)`` item ids, oldest first, 0 = padding (the ``history``
      feature).
    m: How many items to keep.

  Returns:
    ``(B, m)`` int64, most recent first, 0-padded.
  """
  recent = tf.reverse(tf.cast(history, tf.int64), axis=[1])
  length = tf.shape(recent)[1]
  # An entry is a repeat if the same id occurs at a more recent position.
  same = tf.equal(recent[:, :, tf.newaxis], recent[:, tf.newaxis, :])
  earlier = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
  earlier = earlier & ~tf.eye(length, dtype=tf.bool)  # strictly more recent
  repeat = tf.reduce_any(same & earlier[tf.newaxis], axis=2)
  keep = (recent > 0) & ~repeat
  # Stable compaction: kept entries first, in recency order.
  order = tf.argsort(tf.cast(~keep, tf.int32), axis=1, stable=True)
  compact = tf.where(tf.gather(keep, order, batch_dims=1),
                     tf.gather(recent, order, batch_dims=1),
                     tf.zeros_like(recent))
  compact = compact[:, :m]
  return tf.pad(compact, [[0, 0], [0, m - tf.shape(compact)[1]]])

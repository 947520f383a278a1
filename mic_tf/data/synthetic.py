"""Seeded synthetic data of the Amazon-Books and Taobao shapes, at any scale.

The MIC paper's datasets are Amazon Books (459,133 users, 313,966 items,
8,898,041 interactions after ComiRec's filters) and Taobao (976,779 users,
1,708,530 items, 85,384,110 interactions). ``generate_interactions`` makes an
interaction log of that shape, or of a ``scale`` fraction of it, and
``write_amazon_books`` / ``write_taobao`` write it in the *real* file formats,
so the real loaders (``mic_tf.data.amazon``, ``mic_tf.data.taobao``) and the
ComiRec protocol run unchanged on it.

How the log is made (every draw from one ``numpy`` generator seeded by
``seed``):

* Degrees. Every user and every item gets at least 5 interactions (so the
  protocol's 5-core filters keep all of them); the excess over 5 follows a
  Lomax (Pareto II) power law, ``items_tail`` / ``users_tail`` being its
  shape (smaller = heavier tail), scaled and rounded so that the totals are
  exact.
* Latent structure. Items belong to one of ``num_topics`` topics whose sizes
  follow a Zipf law. Each user has a primary, a secondary and a tertiary
  topic (drawn by topic popularity); each of its interactions picks the
  primary topic with probability 0.55, the secondary 0.25, the tertiary 0.10
  and, otherwise, a topic drawn by popularity (noise). Within a topic, the
  users' interaction slots are matched at random to the topic's items'
  interaction slots (a configuration model), so item degrees hold exactly and
  the slots left over when a topic's demand and supply differ are matched at
  random across topics. A model that learns the topics from histories
  clearly beats MostPopular.
* Time. Each user is active over a window of days; primary-topic interactions
  lean early in it and secondary ones late (Beta(1.5, 3) and Beta(3, 1.5)
  positions), so interests drift and recent history predicts the next items.
  Timestamps are whole days, as Amazon's ``unixReviewTime`` is; Taobao's
  are seconds within its nine days.
* Attributes. Each topic owns three categories; an item carries one of its
  topic's categories with probability 0.8, otherwise a random category.
  On Books, 2% of the items have no ``categories`` in the metadata (the
  loader's missing-attribute path).

A (user, item) pair may repeat (ComiRec keeps repeats); ``describe_log``
reports how often.
"""

import dataclasses
import datetime
import json
import os
import pathlib
import tempfile
from typing import Dict, Optional, Union

import numpy as np
import pandas as pd

PathLike = Union[str, os.PathLike]

# Bumped whenever the generator's output changes (names the cache folders).
VERSION = 1
MIN_DEGREE = 5
_TOPIC_WEIGHTS = (0.55, 0.25, 0.10)  # primary, secondary, tertiary; rest noise
_CATEGORIES_PER_TOPIC = 3
_CATEGORY_NOISE = 0.2
ERA_LENGTH = 30
_DEDUP_ROUNDS = 8


@dataclasses.dataclass(frozen=True)
class Shape:
  """Sizes of a dataset after the ComiRec protocol."""
  name: str
  users: int
  items: int
  interactions: int

  def scaled(self, scale: float) -> "Shape":
    """The shape at ``scale`` (a fraction in (0, 1], or more)."""
    if not scale > 0:
      raise ValueError(f"scale must be positive, got {scale}.")
    users = max(int(round(self.users * scale)), 2)
    items = max(int(round(self.items * scale)), 2)
    interactions = int(round(self.interactions * scale))
    interactions = max(interactions, MIN_DEGREE * max(users, items))
    return Shape(self.name, users, items, interactions)


BOOKS = Shape("amazon-books", 459_133, 313_966, 8_898_041)
TAOBAO = Shape("taobao", 976_779, 1_708_530, 85_384_110)


@dataclasses.dataclass
class InteractionLog:
  """A generated log (integer ids; file writers give them real-looking ids).

  Attributes:
    users: ``(E,)`` int64 user index of each interaction.
    items: ``(E,)`` int64 item index.
    days: ``(E,)`` float64 time in days since the dataset's start.
    item_topic: ``(I,)`` int64 latent topic of each item.
    item_category: ``(I,)`` int64 category of each item.
    shape: The generated ``Shape``.
  """
  users: np.ndarray
  items: np.ndarray
  days: np.ndarray
  item_topic: np.ndarray
  item_category: np.ndarray
  shape: Shape


def _degrees(n: int, total: int, tail: float,
             rng: np.random.Generator) -> np.ndarray:
  """``n`` integer degrees >= 5 summing to ``total``, power-law excess."""
  extra = total - MIN_DEGREE * n
  if extra < 0:
    raise ValueError(f"{total} interactions cannot give {n} rows at least "
                     f"{MIN_DEGREE} each.")
  x = rng.pareto(tail, n) + 1e-3
  x = x / x.sum() * extra
  base = np.floor(x).astype(np.int64)
  short = int(extra - base.sum())
  if short:
    frac = x - base
    base[np.argpartition(-frac, short - 1)[:short]] += 1
  return base + MIN_DEGREE


def _spread_repeats(users: np.ndarray, items: np.ndarray, topics: np.ndarray,
                    order: np.ndarray, starts: np.ndarray, sizes: np.ndarray,
                    num_items: int, rng: np.random.Generator) -> None:
  """Swaps items of repeated (user, item) slots with random slots of the
  same topic (in place), which keeps every degree and topic; a few rounds
  remove most repeats (heavy users of small topics keep some)."""
  for _ in range(_DEDUP_ROUNDS):
    pairs = users * num_items + items
    _, first = np.unique(pairs, return_index=True)
    repeat = np.ones(len(pairs), bool)
    repeat[first] = False
    slots = np.flatnonzero(repeat)
    if not slots.size:
      return
    t = topics[slots]
    partners = order[starts[t] + (rng.random(slots.size) * sizes[t]).astype(
        np.int64)]
    # Each slot takes part in one swap at most.
    ok = ~repeat[partners] & (partners != slots)
    slots, partners = slots[ok], partners[ok]
    _, once = np.unique(partners, return_index=True)
    slots, partners = slots[once], partners[once]
    items[slots], items[partners] = items[partners], items[slots].copy()


def default_num_topics(shape: Shape) -> int:
  """About 800 items per topic at full Books size, fewer at small scales."""
  return int(max(8, round(np.sqrt(shape.items) * 0.7)))


def generate_interactions(shape: Shape, scale: float = 1.0, seed: int = 0,
                          num_topics: Optional[int] = None,
                          items_tail: float = 2.5,
                          users_tail: float = 2.2,
                          max_days: float = 6000.0) -> InteractionLog:
  """Generates the interaction log (see the module docstring).

  Args:
    shape: ``BOOKS`` or ``TAOBAO`` (or any ``Shape``).
    scale: Fraction of the shape's users, items and interactions.
    seed: Seed of every draw.
    num_topics: Latent topics (default ``default_num_topics``).
    items_tail: Lomax shape of the item degrees.
    users_tail: Lomax shape of the user degrees.
    max_days: Length of the time range in days.

  Returns:
    The ``InteractionLog``, interactions in no particular order.
  """
  s = shape.scaled(scale)
  rng = np.random.default_rng(seed)
  num_topics = num_topics or default_num_topics(s)
  if num_topics < 3:
    raise ValueError(f"num_topics must be >= 3, got {num_topics}.")
  item_deg = _degrees(s.items, s.interactions, items_tail, rng)
  user_deg = _degrees(s.users, s.interactions, users_tail, rng)

  # Topics: Zipf-sized, items assigned by topic weight.
  topic_weight = 1.0 / np.arange(1, num_topics + 1) ** 0.7
  topic_weight = rng.permutation(topic_weight / topic_weight.sum())
  item_topic = rng.choice(num_topics, s.items, p=topic_weight)
  supply = np.bincount(item_topic, weights=item_deg, minlength=num_topics)
  p_topic = supply / supply.sum()
  num_categories = num_topics * _CATEGORIES_PER_TOPIC
  item_category = (item_topic * _CATEGORIES_PER_TOPIC
                   + rng.integers(0, _CATEGORIES_PER_TOPIC, s.items))
  noisy = rng.random(s.items) < _CATEGORY_NOISE
  item_category[noisy] = rng.integers(0, num_categories, int(noisy.sum()))

  # User slots: each user's sequence is cut into eras of ERA_LENGTH slots
  # (oldest first); each era has its own three topics, so heavy users
  # drift across many topics. A slot picks a topic by its era's mixture.
  slot_user = np.repeat(np.arange(s.users), user_deg)
  first_slot = np.concatenate([[0], np.cumsum(user_deg)[:-1]])
  slot_rank = np.arange(s.interactions) - first_slot[slot_user]
  user_eras = -(-user_deg // ERA_LENGTH)
  era_offset = np.concatenate([[0], np.cumsum(user_eras)[:-1]])
  slot_era = era_offset[slot_user] + slot_rank // ERA_LENGTH
  era_topics = rng.choice(num_topics, (int(user_eras.sum()), 3), p=p_topic)
  r = rng.random(s.interactions)
  kind = np.searchsorted(np.cumsum(_TOPIC_WEIGHTS), r, side="right")
  slot_topic = np.empty(s.interactions, np.int64)
  mixed = kind < 3  # kind 3: noise
  slot_topic[mixed] = era_topics[slot_era[mixed], kind[mixed]]
  slot_topic[~mixed] = rng.choice(num_topics, int((~mixed).sum()), p=p_topic)

  # Item slots, and the match within each topic.
  item_slot_item = np.repeat(np.arange(s.items), item_deg)
  item_slot_topic = item_topic[item_slot_item]
  u_order = np.lexsort((rng.random(s.interactions), slot_topic))
  i_order = np.lexsort((rng.random(s.interactions), item_slot_topic))
  demand = np.bincount(slot_topic, minlength=num_topics)
  supply_n = np.bincount(item_slot_topic, minlength=num_topics)
  u_start = np.concatenate([[0], np.cumsum(demand)[:-1]])
  i_start = np.concatenate([[0], np.cumsum(supply_n)[:-1]])
  sorted_topic = slot_topic[u_order]
  rank = np.arange(s.interactions) - u_start[sorted_topic]
  matched = rank < supply_n[sorted_topic]
  items_of_user_slot = np.empty(s.interactions, np.int64)
  target = i_start[sorted_topic[matched]] + rank[matched]
  items_of_user_slot[matched] = item_slot_item[i_order[target]]
  used = np.zeros(s.interactions, bool)
  used[target] = True
  left_items = item_slot_item[i_order[~used]]
  items_of_user_slot[~matched] = rng.permutation(left_items)
  items = np.empty(s.interactions, np.int64)
  items[u_order] = items_of_user_slot
  _spread_repeats(slot_user, items, slot_topic, u_order, u_start, demand,
                  s.items, rng)

  # Time: a window per user, eras in order; within an era, primary-topic
  # slots lean early and secondary ones late.
  span = np.minimum(rng.lognormal(np.log(400.0), 1.0, s.users), max_days)
  start = rng.random(s.users) * (max_days - span)
  pos = rng.random(s.interactions)
  primary, secondary = kind == 0, kind == 1
  pos[primary] = rng.beta(1.5, 3.0, int(primary.sum()))
  pos[secondary] = rng.beta(3.0, 1.5, int(secondary.sum()))
  era_pos = (slot_rank // ERA_LENGTH + pos) / user_eras[slot_user]
  days = start[slot_user] + era_pos * span[slot_user]
  return InteractionLog(users=slot_user, items=items, days=days,
                        item_topic=item_topic, item_category=item_category,
                        shape=s)


def describe_log(log: InteractionLog) -> Dict[str, float]:
  """Summary numbers of a log (sizes, degree extremes, repeated pairs)."""
  s = log.shape
  user_deg = np.bincount(log.users, minlength=s.users)
  item_deg = np.bincount(log.items, minlength=s.items)
  pairs = log.users * s.items + log.items
  return {"users": s.users, "items": s.items, "interactions": len(log.users),
          "max_user_degree": int(user_deg.max()),
          "max_item_degree": int(item_deg.max()),
          "min_user_degree": int(user_deg.min()),
          "min_item_degree": int(item_deg.min()),
          "repeated_pairs": float(1.0 - np.unique(pairs).size / len(pairs))}


# ----------------------------------------------------------------- ids

_BASE36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)


def _base36(values: np.ndarray, width: int) -> np.ndarray:
  values = np.asarray(values, np.uint64).copy()
  digits = np.empty((len(values), width), np.uint8)
  for col in range(width - 1, -1, -1):
    digits[:, col] = _BASE36[(values % 36).astype(np.int64)]
    values //= 36
  return digits.view(f"S{width}").ravel().astype(str)


def _distinct_random(n: int, modulus: int, seed: int) -> np.ndarray:
  """``n`` distinct seeded random integers in ``[0, modulus)``."""
  rng = np.random.default_rng([seed, modulus % 2**32])
  values = np.zeros(0, np.uint64)
  while values.size < n:
    draw = rng.integers(0, modulus, n + n // 20 + 10, dtype=np.uint64)
    values = np.unique(np.concatenate([values, draw]))
  return rng.permutation(values)[:n]


def reviewer_ids(n: int, seed: int) -> np.ndarray:
  """Amazon-looking reviewer ids (``"A"`` + 12 base-36 chars), distinct."""
  return np.char.add("A", _base36(_distinct_random(n, 36 ** 12, seed), 12))


def asins(n: int, seed: int) -> np.ndarray:
  """ISBN-10-looking asins (10 digits), distinct."""
  values = _distinct_random(n, 10 ** 10, seed).astype(np.int64)
  return np.char.zfill(values.astype(str), 10)


def _scatter_ids(n: int, modulus: int, seed: int) -> np.ndarray:
  """``n`` distinct ids in ``[1, modulus]``, scattered (not 1..n)."""
  multiplier = 2_654_435_761
  while np.gcd(multiplier, modulus) != 1:
    multiplier += 2
  return (np.arange(n, dtype=np.int64) * multiplier + seed * 7919) % modulus + 1


# ---------------------------------------------------------- file writers

_BOOKS_EPOCH = 883_612_800  # 1998-01-01 (UTC), Amazon Books' early years


def _atomic_write(path: pathlib.Path, write_fn) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
  try:
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
      write_fn(f)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_amazon_books(directory: PathLike, scale: float = 1.0,
                       seed: int = 0, **generate_kwargs
                       ) -> Dict[str, pathlib.Path]:
  """Writes ``reviews_Books_5.json`` and ``meta_Books.json`` of a Books log.

  Reviews are one JSON object per line, sorted by asin as the real 5-core
  file is (``reviewerID``, ``asin``, ``helpful``, ``overall``,
  ``summary``, ``unixReviewTime``, ``reviewTime``; the real file's free text
  is left out). The metadata are Python dict literals, one per line, as the
  real ``meta_Books.json`` is, with ``categories`` ``[['Books', topic,
  category]]`` (absent for 2% of the items).

  Args:
    directory: Output folder (created).
    scale: Fraction of Books' size.
    seed: Seed.
    **generate_kwargs: More ``generate_interactions`` arguments.

  Returns:
    ``{"reviews": path, "metadata": path}``.
  """
  log = generate_interactions(BOOKS, scale, seed, **generate_kwargs)
  directory = pathlib.Path(directory)
  rng = np.random.default_rng(seed + 1)
  users = reviewer_ids(log.shape.users, seed)
  items = asins(log.shape.items, seed)
  order = np.lexsort((np.floor(log.days), items[log.items]))
  unix = (_BOOKS_EPOCH + np.floor(log.days).astype(np.int64) * 86400)
  ratings = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], len(order),
                       p=[0.04, 0.05, 0.1, 0.25, 0.56])
  helpful = rng.integers(0, 4, len(order))
  day_text: Dict[int, str] = {}

  def review_time(t: int) -> str:
    if t not in day_text:
      d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
      day_text[t] = f"{d.month:02d} {d.day}, {d.year}"
    return day_text[t]

  def write_reviews(f):
    chunk = []
    for e in order:
      t = int(unix[e])
      chunk.append(
          f'{{"reviewerID": "{users[log.users[e]]}", '
          f'"asin": "{items[log.items[e]]}", '
          f'"helpful": [{helpful[e]}, {helpful[e] + 1}], '
          f'"overall": {ratings[e]}, "summary": "Synthetic review", '
          f'"unixReviewTime": {t}, "reviewTime": "{review_time(t)}"}}\n')
      if len(chunk) >= 100_000:
        f.write("".join(chunk))
        chunk = []
    f.write("".join(chunk))

  no_category = rng.random(log.shape.items) < 0.02

  def write_meta(f):
    for i in np.argsort(items, kind="stable"):
      record = {"asin": str(items[i]), "title": f"Synthetic book {i}",
                "salesRank": {"Books": int(i) + 1}}
      if not no_category[i]:
        record["categories"] = [["Books", f"Topic {log.item_topic[i]}",
                                 f"Category {log.item_category[i]}"]]
      f.write(repr(record) + "\n")

  paths = {"reviews": directory / "reviews_Books_5.json",
           "metadata": directory / "meta_Books.json"}
  _atomic_write(paths["reviews"], write_reviews)
  _atomic_write(paths["metadata"], write_meta)
  return paths


_TAOBAO_START = 1_511_539_200  # 2017-11-25 00:00:00 (UTC+0)
_TAOBAO_SECONDS = 9 * 86400
# Share of non-pv rows in UserBehavior.csv (cart, fav, buy), about 10%.
_OTHER_BEHAVIORS = (("cart", 0.055), ("fav", 0.029), ("buy", 0.020))


def write_taobao(directory: PathLike, scale: float = 0.01, seed: int = 0,
                 **generate_kwargs) -> pathlib.Path:
  """Writes a ``UserBehavior.csv`` of a Taobao-shaped log.

  Rows are headerless ``user,item,category,behavior,timestamp`` with integer
  ids, grouped by user in time order. The log's interactions are the ``pv``
  rows; about 10% more rows (``cart``, ``fav``, ``buy`` on items the user
  viewed) are added, which the loader drops, as with the real file.

  Args:
    directory: Output folder (created).
    scale: Fraction of Taobao's size.
    seed: Seed.
    **generate_kwargs: More ``generate_interactions`` arguments.

  Returns:
    The file's path.
  """
  generate_kwargs.setdefault("max_days", 9.0)
  log = generate_interactions(TAOBAO, scale, seed, **generate_kwargs)
  rng = np.random.default_rng(seed + 2)
  n = len(log.users)
  seconds = np.floor(log.days / generate_kwargs["max_days"]
                     * (_TAOBAO_SECONDS - 1)).astype(np.int64)
  behavior = np.zeros(n, np.int8)  # 0 = pv
  users, items, times = [log.users], [log.items], [seconds]
  behaviors = [behavior]
  for code, (_, share) in enumerate(_OTHER_BEHAVIORS, start=1):
    pick = rng.choice(n, int(share * n), replace=False)
    users.append(log.users[pick])
    items.append(log.items[pick])
    times.append(np.minimum(seconds[pick] + rng.integers(1, 600, len(pick)),
                            _TAOBAO_SECONDS - 1))
    behaviors.append(np.full(len(pick), code, np.int8))
  users, items = np.concatenate(users), np.concatenate(items)
  times, behaviors = np.concatenate(times), np.concatenate(behaviors)
  order = np.lexsort((times, users))
  user_ids = _scatter_ids(log.shape.users, 2 * log.shape.users, seed)
  item_ids = _scatter_ids(log.shape.items, 5 * log.shape.items, seed + 1)
  category_ids = _scatter_ids(int(log.item_category.max()) + 1, 5_000_000,
                              seed + 2)
  names = np.array(["pv"] + [b for b, _ in _OTHER_BEHAVIORS])
  path = pathlib.Path(directory) / "UserBehavior.csv"

  def write_rows(f):
    for start in range(0, len(order), 1_000_000):
      e = order[start:start + 1_000_000]
      pd.DataFrame({
          "user": user_ids[users[e]], "item": item_ids[items[e]],
          "category": category_ids[log.item_category[items[e]]],
          "behavior": names[behaviors[e]],
          "timestamp": _TAOBAO_START + times[e]}).to_csv(
              f, header=False, index=False)

  _atomic_write(path, write_rows)
  return path


# --------------------------------------------------------- cached dataset


def _folder(data_dir: pathlib.Path, name: str, scale: float,
            seed: int) -> pathlib.Path:
  return data_dir / name / f"v{VERSION}-scale-{scale:g}-seed-{seed}"


def books_files(data_dir: pathlib.Path, scale: float = 1.0,
                seed: int = 0) -> Dict[str, pathlib.Path]:
  """The synthetic Books files under ``data_dir``, generated on first use."""
  folder = _folder(data_dir, "synthetic-books", scale, seed)
  marker = folder / "generated.json"
  paths = {"reviews": folder / "reviews_Books_5.json",
           "metadata": folder / "meta_Books.json"}
  if not marker.exists():
    write_amazon_books(folder, scale, seed)
    marker.write_text(json.dumps({"shape": "amazon-books", "scale": scale,
                                  "seed": seed}))
  return paths


def taobao_file(data_dir: pathlib.Path, scale: float = 0.01,
                seed: int = 0) -> pathlib.Path:
  """The synthetic ``UserBehavior.csv`` under ``data_dir`` (cached)."""
  folder = _folder(data_dir, "synthetic-taobao", scale, seed)
  marker = folder / "generated.json"
  path = folder / "UserBehavior.csv"
  if not marker.exists():
    write_taobao(folder, scale, seed)
    marker.write_text(json.dumps({"shape": "taobao", "scale": scale,
                                  "seed": seed}))
  return path

"""The extension guide's examples run: a subclass of MICModel changes the
loss as described, and a Tower subclass registers, builds and trains.

The blocks are read from docs/guides/extending.md, where users read them."""

import os
import re

import numpy as np
import tensorflow as tf

import mic_tf  # noqa: F401
from mic_tf import features as F
from mic_tf import pipeline
from mic_tf.models import MICConfig
from mic_tf.models import MICModel
from mic_tf.models import Views
from mic_tf.testing.synthetic import synthetic_dataset
from mic_tf.towers import build_towers
from mic_tf.towers import registry


_GUIDE = os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                      "guides", "extending.md")


def _guide_block(defines):
  """The namespace of the one ```python block of the guide that defines it."""
  with open(_GUIDE) as f:
    text = f.read()
  block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S)
               if f"class {defines}" in b)
  namespace = {}
  exec(block, namespace)  # pylint: disable=exec-used
  return namespace


def _readme_class():
  return _guide_block("MyMIC")["MyMIC"]


def test_readme_subclass_trains_and_adds_its_term():
  my_mic = _readme_class()
  tf.keras.utils.set_random_seed(0)
  ds = synthetic_dataset(num_users=60, num_items=30, length=10)
  tables = F.build_feature_tables(ds, maxlen=5, max_item_users=4)
  user, item = build_towers("dssm", tables.spec, embedding_dim=8,
                            output_dim=8, hidden_units=(8,))
  model = my_mic(user, item, tables.spec, tables.item_table,
                 MICConfig(terms=("uu",), projection_dim=8))
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
  data = pipeline.training_dataset(tables, ds, batch_size=16, seed=0)
  hist = model.fit(data, epochs=2, verbose=0).history
  assert np.all(np.isfinite(hist["loss"]))
  # The override's extra term is included: uu loss is larger than the plain
  # NT-Xent value for the same views.
  batch = next(iter(data))
  users = model.encode_user(batch, 2, training=True)
  shared = [model.project_user(u) for u in users]
  items = model.encode_item(batch["item_id"], 2, training=True)
  terms = model.contrastive_losses(Views(
      user=users[1:], item=items[1:], user_shared=shared[1:],
      item_shared=[model.project_item(v) for v in items][1:],
      user_ids=batch["user"], item_ids=batch["item_id"]))
  from mic_tf import losses  # pylint: disable=g-import-not-at-top
  plain = losses.user_user_loss(users[1], users[2], batch["user"], 0.1)
  assert float(terms["uu"]) > float(plain)


def test_guide_tower_registers_builds_and_trains():
  namespace = _guide_block("MeanTower")
  try:
    tf.keras.utils.set_random_seed(0)
    ds = synthetic_dataset(num_users=60, num_items=30, length=10)
    tables = F.build_feature_tables(ds, maxlen=5, max_item_users=4)
    user, item = build_towers("mean", tables.spec, embedding_dim=8,
                              output_dim=8)
    assert isinstance(user, namespace["MeanTower"])
    model = MICModel(user, item, tables.spec, tables.item_table,
                     MICConfig(terms=("uu",), projection_dim=8))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    data = pipeline.training_dataset(tables, ds, batch_size=16, seed=0)
    hist = model.fit(data, epochs=1, verbose=0).history
    assert np.all(np.isfinite(hist["loss"]))
  finally:
    registry._USER_BUILDERS.pop("mean", None)  # pylint: disable=protected-access
    registry._ITEM_BUILDERS.pop("mean", None)  # pylint: disable=protected-access

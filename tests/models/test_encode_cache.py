"""Encoding reuses one tf.function per model and space (no retracing)."""

import gc

import numpy as np
import pytest
import tensorflow as tf

import mic_tf  # noqa: F401
from mic_tf import features as F
from mic_tf import training
from mic_tf.models import encode
from mic_tf.models.build import build_model
from mic_tf.models.build import build_variables
from mic_tf.models.config import MICConfig
from mic_tf.testing.synthetic import synthetic_dataset


def _model():
  ds = synthetic_dataset(num_users=60, num_items=30, length=10)
  tables = F.build_feature_tables(ds, maxlen=5, max_item_users=4)
  config = training.ExperimentConfig.from_settings(
      dataset="synthetic", embedding_dim=8, output_dim=8, hidden_units=(8,),
      maxlen=5, max_item_users=4, mic=MICConfig.base(projection_dim=8))
  model = build_model(config, tables)
  build_variables(model, tables)
  return model, F.eval_users(tables, ds, ds.valid_users)


def test_repeated_encoding_traces_each_function_at_most_twice():
  model, users = _model()
  first = None
  for _ in range(6):  # e.g. one evaluation per epoch
    vectors = encode.encode_users(model, users.features, "shared",
                                  batch_size=4)
    encode.encode_users(model, users.features, "user", batch_size=4)
    encode.encode_items(model, "shared", batch_size=7)
    encode.encode_items(model, "item", batch_size=7)
    first = vectors if first is None else first
  np.testing.assert_array_equal(first, vectors)
  for side, space in (("user", "shared"), ("user", "user"),
                      ("item", "shared"), ("item", "item")):
    fn = encode.encoder(model, side, space)
    # One trace for full batches, one relaxed trace for the last partial one.
    assert fn.experimental_get_tracing_count() <= 2, (side, space)


def test_functions_follow_the_weights_and_go_with_the_model():
  model, users = _model()
  before = encode.encode_items(model, "item")
  model.set_weights([w * 2.0 + 0.1 for w in model.get_weights()])
  after = encode.encode_items(model, "item")
  assert not np.allclose(before, after)
  gc.collect()  # models of earlier tests that are already unreachable go now
  count = len(encode._FUNCTIONS)  # pylint: disable=protected-access
  assert model in encode._FUNCTIONS  # pylint: disable=protected-access
  del model
  gc.collect()
  assert len(encode._FUNCTIONS) == count - 1  # pylint: disable=protected-access
  del users
  tf.keras.backend.clear_session()


@pytest.mark.slow
def test_many_models_in_one_process_do_not_warn_of_retracing(caplog):
  # A table or figure over many runs loads one model per run: each traces
  # its own functions once, which is no retracing to warn about.
  models = [_model() for _ in range(7)]
  with caplog.at_level("WARNING"):
    for model, users in models:
      encode.encode_users(model, users.features, "shared", batch_size=4)
      encode.encode_items(model, "item", batch_size=7)
  assert not [r for r in caplog.records if "retracing" in r.getMessage()]

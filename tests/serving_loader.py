"""Serves requests from exported SavedModels in a fresh process.

Used by tests/test_serving.py; imports ScaNN and TensorFlow only (no mic_tf):

  python tests/serving_loader.py REQUESTS.npz ANSWERS.npz NAME=DIR ...

REQUESTS.npz holds ``raw/<input>`` arrays (raw ids and values, for the
``recommend`` signature) and ``ids/<input>`` arrays (the protocol's ids, for
``recommend_ids``). Each model answers both; every output is written to
ANSWERS.npz as ``<NAME>/<signature>/<output>``.
"""

import sys

import numpy as np
import scann  # noqa: F401  (registers the ScaNN ops before loading)
import tensorflow as tf


def main(argv):
  if len(argv) < 4:
    raise SystemExit(__doc__)
  requests = np.load(argv[1])
  inputs = {"recommend": {}, "recommend_ids": {}}
  for key in requests.files:
    kind, name = key.split("/", 1)
    signature = "recommend" if kind == "raw" else "recommend_ids"
    inputs[signature][name] = tf.constant(requests[key])
  answers = {}
  for spec in argv[3:]:
    name, directory = spec.split("=", 1)
    model = tf.saved_model.load(directory)
    for signature, feed in inputs.items():
      for key, value in model.signatures[signature](**feed).items():
        value = value.numpy()
        if value.dtype == object:
          value = value.astype(str)
        answers[f"{name}/{signature}/{key}"] = value
  np.savez(argv[2], **answers)


if __name__ == "__main__":
  main(sys.argv)

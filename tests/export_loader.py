"""Runs exported SavedModels in a fresh process: ScaNN + TensorFlow only.

Used by tests/test_export.py to check that the exports load and answer without
mic_tf:

  python tests/export_loader.py INPUTS.npz OUTPUTS.npz NAME=DIR:SIGNATURE ...

INPUTS.npz holds ``user/<field>`` arrays (the user features) and
``item/item_id``. Each model's signature is called with the user features
(``item_embedding`` with the item ids), and every output is written to
OUTPUTS.npz as ``<NAME>/<output name>``.
"""

import sys

import numpy as np
import scann  # noqa: F401  (registers the ScaNN ops before loading)
import tensorflow as tf


def main(argv):
  if len(argv) < 4:
    raise SystemExit(__doc__)
  inputs = np.load(argv[1])
  user = {k.split("/", 1)[1]: tf.constant(v) for k, v in inputs.items()
          if k.startswith("user/")}
  item = {"item_id": tf.constant(inputs["item/item_id"])}
  outputs = {}
  for spec in argv[3:]:
    name, rest = spec.split("=", 1)
    directory, signature = rest.rsplit(":", 1)
    fn = tf.saved_model.load(directory).signatures[signature]
    result = fn(**(item if signature == "item_embedding" else user))
    for key, value in result.items():
      outputs[f"{name}/{key}"] = value.numpy()
  np.savez(argv[2], **outputs)


if __name__ == "__main__":
  main(sys.argv)

"""DSSMTower (the paper's base model) against the shared tower contract."""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import tensorflow as tf

import tower_test_lib as lib


class DSSMTowerTest(lib.TowerContractTest):

  TOWER = "dssm"


if __name__ == "__main__":
  tf.test.main()

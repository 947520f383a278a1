"""mic-tf: Model-agnostic Integrated Cross-channel recommenders (MIC)."""

from mic_tf import _env  # noqa: F401  (must run before tf.keras is touched)

__version__ = "0.1.0"

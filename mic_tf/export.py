"""Saves the channel and tower modules as SavedModels; loads them back.

This module only saves and describes: every module brings its own
signatures (``Channel.signatures``, ``UserEncoder.signatures``,
``ItemEncoder.signatures``), so a server runs exactly the code the offline
evaluation runs. ``mic_tf.runs.export_run`` builds the modules of a
finished run and calls ``export_modules``, which writes::

  export_dir/
    export.json     what was exported: models, signatures, settings, inputs
    user_tower/     "user_embedding": user features (int ids) ->
                    {"user_shared", "user_space"}
    item_tower/     "item_embedding": {"item_id"} -> {"item_shared",
                    "item_space"}
    u2i/ u2u/ i2i/ itemknn/ userknn/ ease/ fused/
                    "recommend" (also "serving_default"): raw user features
                    and raw "exclude" ids -> {"item_ids" (raw), "scores"};
                    "recommend_ids": the same in the protocol's int ids.

Loading: SavedModels with ScaNN searchers hold ScaNN's custom ops, so a
fresh process must ``import scann`` before ``tf.saved_model.load``
(``load_serving_model`` does it, and raises a clear error without scann).
Exact servers and the towers need TensorFlow only::

  import scann  # only for ScaNN servers
  import tensorflow as tf
  server = tf.saved_model.load("export_dir/u2u")
  out = server.signatures["recommend"](
      history=tf.constant([["50", "181", ""]]), gender=tf.constant(["F"]),
      age=tf.constant([25], tf.int64), occupation=tf.constant(["writer"]),
      exclude=tf.constant([["258"]]))
  out["item_ids"], out["scores"]
"""

import json
import os
from typing import Any, Dict, Mapping, Optional

import tensorflow as tf

#: Per-SavedModel description, read by ``load_serving_model``.
MODEL_INFO_FILENAME = "mic_tf_model.json"
EXPORT_INFO_FILENAME = "export.json"
_SCANN_SAVE_OPTIONS = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])


def _import_scann() -> None:
  try:
    import scann  # pylint: disable=g-import-not-at-top,unused-import
    from scann.scann_ops.py import scann_ops  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise ImportError(
        "This SavedModel holds ScaNN ops: install scann (pip install "
        "scann==1.4.2) and `import scann` before loading it, or export with "
        "index='exact'.") from e


def save_module(module: tf.Module, path: str,
                info: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
  """Saves one module with its own signatures, plus ``mic_tf_model.json``.

  Args:
    module: A module with ``signatures()`` (a channel or an encoder).
    path: The SavedModel directory.
    info: Extra fields for ``mic_tf_model.json``.

  Returns:
    What ``mic_tf_model.json`` records.
  """
  signatures = module.signatures()
  needs_scann = bool(getattr(module, "needs_scann", False))
  tf.saved_model.save(module, path, signatures=signatures,
                      options=_SCANN_SAVE_OPTIONS if needs_scann else None)
  details = {**dict(info or {}), "signatures": sorted(signatures),
             "needs_scann": needs_scann}
  with open(os.path.join(path, MODEL_INFO_FILENAME), "w") as f:
    json.dump(details, f, indent=1, sort_keys=True)
  return details


def export_modules(modules: Mapping[str, tf.Module], export_dir: str,
                   info: Optional[Mapping[str, Any]] = None
                   ) -> Dict[str, str]:
  """Saves every module under ``export_dir/<name>`` and writes export.json.

  Args:
    modules: Name -> module with ``signatures()``.
    export_dir: Output directory (created; existing models are replaced).
    info: Written to ``export_dir/export.json`` with each model's details.

  Returns:
    Name -> SavedModel path.
  """
  os.makedirs(export_dir, exist_ok=True)
  paths, models = {}, {}
  for name, module in modules.items():
    paths[name] = os.path.join(export_dir, name)
    models[name] = save_module(module, paths[name], {"model": name})
  summary = {**dict(info or {}), "models": models}
  with open(os.path.join(export_dir, EXPORT_INFO_FILENAME), "w") as f:
    json.dump(summary, f, indent=1, sort_keys=True)
  return paths


def load_serving_model(path: str) -> Any:
  """Loads an exported SavedModel, importing ScaNN first when it needs it.

  Args:
    path: One exported model directory (e.g. ``export_dir/u2i``).

  Returns:
    The loaded object; call ``.signatures["recommend"](**inputs)`` (or
    ``"recommend_ids"``, ``"user_embedding"``, ``"item_embedding"``).

  Raises:
    FileNotFoundError: If ``path`` holds no SavedModel.
    ImportError: If the model needs scann and it is not installed.
  """
  if not tf.saved_model.contains_saved_model(path):
    raise FileNotFoundError(
        f"No SavedModel in {path!r}: pass one directory written by "
        "export_modules (e.g. <export_dir>/u2i).")
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

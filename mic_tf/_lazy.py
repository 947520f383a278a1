"""Lazy package attributes (PEP 562), so importing a package stays cheap.

A package lists the names it exports and the submodule each comes from;
the submodule (and TensorFlow, if it needs it) is imported on first use, as
is a submodule named as an attribute (``mic_tf.training``)::

  __getattr__, __dir__ = _lazy.exports(__name__, {
      "MICModel": "mic_tf.models.mic_model", ...})

This keeps the TensorFlow-free modules (``mic_tf.config``, the
``MICConfig`` and ``MiningConfig`` modules, ``mic_tf.cli``'s flags) free of
TensorFlow when they are imported through their packages.
"""

import importlib
import importlib.util
from typing import Any, Callable, Dict, List, Tuple


def exports(package: str, names: Dict[str, str]
            ) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
  """``(__getattr__, __dir__)`` of a package exporting ``names`` lazily."""
  module_globals = importlib.import_module(package).__dict__

  def __getattr__(name: str) -> Any:  # pylint: disable=invalid-name
    if name not in names:
      # A submodule (``mic_tf.training``) is imported on first use too.
      if not name.startswith("_") and importlib.util.find_spec(
          f"{package}.{name}") is not None:
        return importlib.import_module(f"{package}.{name}")
      raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(names[name]), name)
    module_globals[name] = value  # later lookups skip __getattr__
    return value

  def __dir__() -> List[str]:  # pylint: disable=invalid-name
    return sorted(set(module_globals) | set(names))

  return __getattr__, __dir__

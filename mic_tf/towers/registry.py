"""Tower registry: ``--tower=NAME`` in every binary resolves here.

A registered builder makes the *user* tower from the user fields; the item
tower is a ``DSSMTower`` over the item fields unless the builder also makes
one. Register your own::

  def build_my_tower(fields, embedding_dim, output_dim, dropout, **kw):
    return MyTower(fields, embedding_dim, output_dim)

  mic_tf.towers.register_tower("mine", build_my_tower)
"""

from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf

from mic_tf import features as F
from mic_tf.towers.dssm import DSSMTower

TowerBuilder = Callable[..., tf.keras.Model]

_USER_BUILDERS: Dict[str, TowerBuilder] = {}
_ITEM_BUILDERS: Dict[str, TowerBuilder] = {}


def register_tower(name: str, user_builder: TowerBuilder,
                   item_builder: Optional[TowerBuilder] = None,
                   overwrite: bool = False) -> None:
  """Registers a tower under ``name``.

  Args:
    name: Registry key (``--tower`` value).
    user_builder: ``fn(fields, embedding_dim, output_dim, dropout, **kwargs)``
      returning the user tower.
    item_builder: Same for the item tower; defaults to ``DSSMTower``.
    overwrite: Allow replacing an existing entry.

  Raises:
    ValueError: If ``name`` is taken and ``overwrite`` is False.
  """
  if name in _USER_BUILDERS and not overwrite:
    raise ValueError(f"A tower named {name!r} is already registered; pass "
                     "overwrite=True to replace it.")
  _USER_BUILDERS[name] = user_builder
  if item_builder is not None:
    _ITEM_BUILDERS[name] = item_builder
  else:
    _ITEM_BUILDERS.pop(name, None)


def available_towers() -> Tuple[str, ...]:
  return tuple(sorted(_USER_BUILDERS))


def _dssm(fields, embedding_dim, output_dim, dropout, name=None,
          hidden_units=(256,), **kwargs):
  if kwargs:
    raise ValueError(f"The dssm tower takes no {sorted(kwargs)}; its options "
                     "are embedding_dim, output_dim, dropout and "
                     "hidden_units.")
  return DSSMTower(fields, embedding_dim, output_dim, dropout=dropout,
                   hidden_units=hidden_units, name=name)


def build_towers(name: str, spec: F.FeatureSpec, embedding_dim: int = 128,
                 output_dim: int = 128, dropout: float = 0.2,
                 **kwargs) -> Tuple[tf.keras.Model, tf.keras.Model]:
  """Builds (user tower, item tower) for a registered tower name.

  Args:
    name: A registered tower name.
    spec: The feature spec.
    embedding_dim: Field embedding width.
    output_dim: Representation width.
    dropout: Dropout rate inside the towers.
    **kwargs: Passed to the user tower builder; ``hidden_units`` also to
      the item tower builder.

  Returns:
    The two towers.

  Raises:
    ValueError: For an unknown name.
  """
  if name not in _USER_BUILDERS:
    raise ValueError(f"Unknown tower {name!r}; available towers: "
                     f"{', '.join(available_towers())}. Register your own with "
                     "mic_tf.towers.register_tower.")
  if "name" in kwargs:
    raise ValueError("Tower names are fixed (user_tower, item_tower); drop "
                     "'name' from the tower arguments.")
  user = _USER_BUILDERS[name](spec.user_fields, embedding_dim, output_dim,
                              dropout, name="user_tower", **kwargs)
  item_builder = _ITEM_BUILDERS.get(name, _dssm)
  item_kwargs = {}
  if "hidden_units" in kwargs:
    item_kwargs["hidden_units"] = kwargs["hidden_units"]
  item = item_builder(spec.item_fields, embedding_dim, output_dim, dropout,
                      name="item_tower", **item_kwargs)
  return user, item


register_tower("dssm", _dssm)

# The plug-in baselines of the MIC paper (section 4.4); the item tower stays a
# DSSMTower for each of them.
# pylint: disable=g-import-not-at-top,wrong-import-position
from mic_tf.towers import comirec_dr as _comirec_dr
from mic_tf.towers import comirec_sa as _comirec_sa
from mic_tf.towers import youtube_dnn as _youtube_dnn

register_tower("youtube_dnn", _youtube_dnn.build_youtube_dnn)
register_tower("comirec_sa", _comirec_sa.build_comirec_sa)
register_tower("comirec_dr", _comirec_dr.build_comirec_dr)

"""``ChannelConfig``: the settings of every retrieval channel, in one place.

U2I, U2U, I2I and the fusion are configured by ``U2IConfig``,
``U2UConfig``, ``I2IConfig`` and ``FusionConfig`` (see those modules for
the exact formulas), the classical
channels by ``ItemKNNConfig``, ``UserKNNConfig`` and ``EASEConfig``
(``mic_tf.channels.classical``).
"""

import dataclasses
import json
import os
from typing import Any, Dict, Mapping, Optional

from mic_tf import names
from mic_tf.channels.classical import EASEConfig
from mic_tf.channels.classical import ItemKNNConfig
from mic_tf.channels.classical import UserKNNConfig
from mic_tf.channels.fusion import FusionConfig
from mic_tf.channels.i2i import I2IConfig
from mic_tf.channels.u2i import U2IConfig
from mic_tf.channels.u2u import U2UConfig


@dataclasses.dataclass(frozen=True)
class ChannelConfig:
  """Settings of U2I, U2U, I2I, the classical channels and the fusion.

  Attributes:
    u2i: ``U2IConfig``.
    u2u: ``U2UConfig``.
    i2i: ``I2IConfig``.
    itemknn: ``ItemKNNConfig``.
    userknn: ``UserKNNConfig``.
    ease: ``EASEConfig``.
    fusion: ``FusionConfig``.
  """
  u2i: U2IConfig = dataclasses.field(default_factory=U2IConfig)
  u2u: U2UConfig = dataclasses.field(default_factory=U2UConfig)
  i2i: I2IConfig = dataclasses.field(default_factory=I2IConfig)
  itemknn: ItemKNNConfig = dataclasses.field(default_factory=ItemKNNConfig)
  userknn: UserKNNConfig = dataclasses.field(default_factory=UserKNNConfig)
  ease: EASEConfig = dataclasses.field(default_factory=EASEConfig)
  fusion: FusionConfig = dataclasses.field(default_factory=FusionConfig)

  def replace(self, **sections) -> "ChannelConfig":
    """A copy with some sections replaced, e.g. ``replace(u2u=U2UConfig())``."""
    return dataclasses.replace(self, **sections)

  def to_dict(self) -> Dict[str, Any]:
    return {"u2i": dataclasses.asdict(self.u2i),
            "u2u": dataclasses.asdict(self.u2u),
            "i2i": dataclasses.asdict(self.i2i),
            "itemknn": dataclasses.asdict(self.itemknn),
            "userknn": dataclasses.asdict(self.userknn),
            "ease": dataclasses.asdict(self.ease),
            "fusion": self.fusion.to_dict()}

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=1)

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "ChannelConfig":
    """Inverse of ``to_dict``; missing sections keep their defaults.

    Fields saved under an earlier name (``num_neighbors``) are read under
    today's (``names.RENAMED_FIELDS``).

    Raises:
      ValueError: On an unknown section or field.
    """
    sections = {"u2i": U2IConfig, "u2u": U2UConfig, "i2i": I2IConfig,
                "itemknn": ItemKNNConfig, "userknn": UserKNNConfig,
                "ease": EASEConfig, "fusion": FusionConfig}
    unknown = sorted(set(d) - set(sections))
    if unknown:
      raise ValueError(f"Unknown channel config section(s) {unknown}; use "
                       f"{sorted(sections)}.")
    kwargs = {}
    for name, section_cls in sections.items():
      if name in d:
        try:
          kwargs[name] = section_cls(**names.upgrade_fields(d[name]))
        except TypeError as error:
          raise ValueError(f"Bad {name} settings {d[name]}: {error}") from None
    return cls(**kwargs)


def load_json_option(value: Optional[str], what: str) -> Optional[Any]:
  """Parses a command-line option that is a JSON file path or inline JSON.

  Args:
    value: None/empty, a path to a JSON file, or JSON text.
    what: The option's name, for error messages.

  Returns:
    The decoded JSON, or None for an empty value.

  Raises:
    ValueError: If the text is neither a readable file nor valid JSON.
  """
  if not value:
    return None
  if os.path.isfile(value):
    with open(value) as f:
      value = f.read()
  try:
    return json.loads(value)
  except json.JSONDecodeError as error:
    raise ValueError(
        f"{what} {value[:80]!r} is neither an existing JSON file nor valid "
        f"JSON ({error}); pass e.g. '{{\"u2u\": {{\"alpha\": 0.7}}}}'."
    ) from None


def load_channel_config(value: Optional[str]) -> ChannelConfig:
  """A ``ChannelConfig`` from a JSON file path or an inline JSON object.

  Args:
    value: None/empty (defaults), a path to a JSON file (e.g. written with
      ``ChannelConfig.to_json``, or an evaluation report
      ``channels_<split>.json``, whose tuned ``channel_config`` is used), or
      the JSON text itself.

  Returns:
    The ``ChannelConfig``.

  Raises:
    ValueError: If the text is neither a readable file nor valid JSON, or
      is not a valid config.
  """
  d = load_json_option(value, "Channel config")
  if d is None:
    return ChannelConfig()
  if not isinstance(d, dict):
    raise ValueError(f"Channel config must be a JSON object, got {d!r}.")
  if "channel_config" in d:  # an evaluation report
    d = d["channel_config"]
  return ChannelConfig.from_dict(d)

"""``MICConfig``: every setting of the MIC objective, in one place.

Which representation each loss and each retrieval channel uses:

===================  =============================================
what                 representation
===================  =============================================
basic loss (eq. 7)   shared user-item space (after projection heads)
UI loss (eq. 4)      shared user-item space
UU loss (eq. 5)      user space (user tower output)
II loss (eq. 6)      item space (item tower output)
distill term         shared user-item space (beyond the paper)
U2I retrieval        shared user-item space
U2U retrieval        user space (user -> similar training users)
I2I retrieval        item space (history item -> similar items)
===================  =============================================

A multi-interest user tower (``(B, K, d)``) contributes, in training, the
interest that best matches the target item in the shared space (ComiRec's
rule) to the basic and UI losses, and the mean of its L2-normalised interests
to the UU loss; the U2U channel uses the same mean.
"""

import dataclasses
import json
from typing import Dict, Optional, Tuple

from mic_tf import names

TERMS = names.TERMS
BASIC_LOSSES = ("softmax", "logistic")
WEIGHTING_MODES = ("fixed", "uncertainty")
II_POSITIVES = ("views", "cooccurrence")


# MICConfig.tuned(): the selected trial of docs/results/tuning_mic/best.json.
TUNED_SETTINGS = {
    "terms": ("ui", "uu", "ii"),
    "lambda_": 0.9,
    "temperature": 0.1,
    "weights": {"ui": 1.0, "uu": 1.0, "ii": 1.0},
    "user_attribute_mask": 0.2,
    "history_mask": 0.2,
    "item_attribute_mask": 0.2,
    "item_users_mask": 0.2,
    "embedding_dropout": 0.2,
    "num_views": 2,
    "contrastive_batch_size": 128,
    "contrastive_warmup_steps": 0,
}


@dataclasses.dataclass
class MICConfig:
  """Settings of the MIC objective.

  Attributes:
    terms: Enabled contrastive terms, any subset of ``("ui", "uu", "ii")``;
      empty = the base model (basic loss only).
    lambda_: Weight of the basic loss: ``L = λ·basic + (1-λ)·Σ w_k·L_k``.
    weights: Per-term weights ``w_k`` (paper: 1:1:1).
    weighting: ``"fixed"`` or ``"uncertainty"`` (learned, Kendall et al.).
    temperature: Temperature τ of the contrastive losses (paper: 0.1).
    basic_loss: ``"softmax"`` (in-batch sampled softmax) or ``"logistic"``
      (paper eq. 7).
    basic_temperature: Temperature of the basic loss's cosine logits.
    log_q_correction: Subtract log sampling probability in the softmax.
    num_views: Perturbed views per side: 2 (two independent perturbed views
      are contrasted, SimCLR-style) or 1 (the unperturbed anchor against one
      perturbed view, as eq. 5 is written).
    user_attribute_mask: Masking rate of each user attribute field.
    history_mask: Masking rate of each history item.
    item_attribute_mask: Masking rate of each item attribute (incl. id;
      for bag attributes such as genres, of each entry).
    item_users_mask: Masking rate of each entry of the item's user bag.
    field_mask_rates: Per-field overrides of the rates above.
    embedding_dropout: Dropout rate in the embedded feature space (views
      only).
    projection: ``"mlp"`` (non-linear heads into the shared space) or
      ``"none"`` (shared space = own spaces; needs equal widths).
    projection_dim: Width of the shared space.
    term_temperatures: Per-term overrides of ``temperature`` (e.g.
      ``{"ii": 0.5}``: a softer item-item term spreads co-chosen items
      less).
    mask_false_negatives: Never use known positives as negatives: in-batch
      items of the same user or in the row's history, in the basic loss,
      both UI directions and II (``mic_tf.losses.false_negatives``).
    contrastive_warmup_steps: Ramp the contrastive weight ``1 - λ`` linearly
      from 0 to its value over the first this-many training steps (0: no
      ramp), so the views are contrasted once the towers carry signal.
    ii_positives: The positive of each item in the II term: ``"views"``
      (eq. 6: the other perturbed view of the same item) or
      ``"cooccurrence"`` (a perturbed view of one of the item's
      ``ii_neighbors`` most co-chosen items, by cosine over the training
      users' histories, drawn uniformly each step; an item without
      co-chosen items keeps its own view; ``mic_tf.mining.cooccurrence``).
    ii_neighbors: Co-occurrence neighbours kept per item (the positives
      ``ii_positives="cooccurrence"`` draws from).
    contrastive_batch_size: Build the perturbed views, and compute the
      contrastive terms, on the first this-many examples of each (shuffled)
      batch only; ``None`` uses the whole batch as the paper does. The
      contrastive terms cost O(views x rows) tower passes and O(rows^2)
      similarities, so this knob bounds MIC's extra cost on a CPU.
  """
  terms: Tuple[str, ...] = ("ui", "uu", "ii")
  lambda_: float = 0.7
  weights: Dict[str, float] = dataclasses.field(
      default_factory=lambda: {"ui": 1.0, "uu": 1.0, "ii": 1.0})
  weighting: str = "fixed"
  temperature: float = 0.1
  basic_loss: str = "softmax"
  basic_temperature: float = 0.1
  log_q_correction: bool = False
  num_views: int = 2
  user_attribute_mask: float = 0.2
  history_mask: float = 0.2
  item_attribute_mask: float = 0.2
  item_users_mask: float = 0.2
  field_mask_rates: Dict[str, float] = dataclasses.field(default_factory=dict)
  embedding_dropout: float = 0.2
  projection: str = "mlp"
  projection_dim: int = 128
  contrastive_batch_size: Optional[int] = None
  term_temperatures: Dict[str, float] = dataclasses.field(
      default_factory=dict)
  mask_false_negatives: bool = True
  contrastive_warmup_steps: int = 0
  ii_positives: str = "views"
  ii_neighbors: int = 20
  distill_weight: float = 0.0
  distill_items: int = 50
  distill_holdout: float = 0.2
  distill_start_epoch: int = 0

  def __post_init__(self):
    self.terms = tuple(self.terms)
    if self.ii_positives not in II_POSITIVES:
      raise ValueError(f"ii_positives must be one of {II_POSITIVES}, got "
                       f"{self.ii_positives!r}.")
    if isinstance(self.ii_neighbors, bool) or not isinstance(
        self.ii_neighbors, int) or self.ii_neighbors < 1:
      raise ValueError(f"ii_neighbors must be an integer >= 1, got "
                       f"{self.ii_neighbors!r}.")
    # An override equal to the shared temperature is no override: dropping
    # it makes equivalent configs compare (and resume) as equal.
    self.term_temperatures = {k: float(v) for k, v in
                              dict(self.term_temperatures).items()
                              if float(v) != float(self.temperature)}
    bad = [k for k in self.term_temperatures if k not in TERMS]
    if bad:
      raise ValueError(f"term_temperatures names unknown term(s) {bad}; "
                       f"choose from {TERMS}.")
    if any(v <= 0 for v in self.term_temperatures.values()):
      raise ValueError("term_temperatures must be positive, got "
                       f"{self.term_temperatures}.")
    if self.contrastive_warmup_steps < 0:
      raise ValueError("contrastive_warmup_steps must be >= 0, got "
                       f"{self.contrastive_warmup_steps}.")
    bad = [t for t in self.terms if t not in TERMS]
    if bad:
      raise ValueError(f"Unknown contrastive term(s) {bad}; choose from "
                       f"{TERMS} (or none for the base model).")
    if not 0.0 <= self.lambda_ <= 1.0:
      raise ValueError(f"lambda_ must be in [0, 1], got {self.lambda_}.")
    if self.basic_loss not in BASIC_LOSSES:
      raise ValueError(f"basic_loss must be one of {BASIC_LOSSES}, got "
                       f"{self.basic_loss!r}.")
    if self.weighting not in WEIGHTING_MODES:
      raise ValueError(f"weighting must be one of {WEIGHTING_MODES}, got "
                       f"{self.weighting!r}.")
    if self.num_views not in (1, 2):
      raise ValueError(f"num_views must be 1 or 2, got {self.num_views}.")
    if self.temperature <= 0 or self.basic_temperature <= 0:
      raise ValueError("Temperatures must be positive.")
    if self.projection not in ("mlp", "none"):
      raise ValueError(f"projection must be 'mlp' or 'none', got "
                       f"{self.projection!r}.")
    rates = dict(user_attribute_mask=self.user_attribute_mask,
                 history_mask=self.history_mask,
                 item_attribute_mask=self.item_attribute_mask,
                 item_users_mask=self.item_users_mask,
                 embedding_dropout=self.embedding_dropout,
                 **self.field_mask_rates)
    for k, v in rates.items():
      if not 0.0 <= v < 1.0:
        raise ValueError(f"Rate {k}={v} must be in [0, 1).")
    if self.contrastive_batch_size is not None and (
        self.contrastive_batch_size < 2):
      raise ValueError("contrastive_batch_size must be >= 2 (in-batch "
                       f"negatives), got {self.contrastive_batch_size}.")
    if not self.distill_weight >= 0.0:
      raise ValueError("distill_weight must be >= 0 (0: no teacher term), "
                       f"got {self.distill_weight}.")
    if isinstance(self.distill_items, bool) or self.distill_items < 1:
      raise ValueError("distill_items must be a positive integer, got "
                       f"{self.distill_items}.")
    if not 0.0 <= self.distill_holdout < 1.0:
      raise ValueError("distill_holdout must be in [0, 1), got "
                       f"{self.distill_holdout}.")
    if self.distill_start_epoch < 0:
      raise ValueError("distill_start_epoch must be >= 0, got "
                       f"{self.distill_start_epoch}.")
    missing = [t for t in self.terms if t not in self.weights]
    if missing:
      raise ValueError(f"No weight given for term(s) {missing}.")

  @property
  def contrastive(self) -> bool:
    return bool(self.terms)

  @property
  def distill(self) -> bool:
    """Whether the U2U-teacher term is on (``distill_weight > 0``)."""
    return self.distill_weight > 0.0

  def temperature_of(self, term: str) -> float:
    """The contrastive temperature of one term (override or ``temperature``)."""
    return self.term_temperatures.get(term, self.temperature)

  @classmethod
  def tuned(cls, **kwargs) -> "MICConfig":
    """The settings chosen on validation users (``experiments/tune.py``).

    Selected by the search recorded in ``docs/results/tuning_mic/``
    (``best.json``: trial, parameters, validation and test scores; one JSON
    per trial). That search ran 6 trials at a budget of 1,600 steps
    (about two epochs of ML-1M) and selected the trial with the paper's
    settings except ``λ = 0.9`` and views on the first 128 rows of each
    batch. ``tests/models/test_presets.py`` checks that these values equal
    the record. Keyword arguments override (e.g. ``terms=("ii",)``).
    """
    values = dict(TUNED_SETTINGS)
    values.update(kwargs)
    return cls(**values)

  @classmethod
  def base(cls, **kwargs) -> "MICConfig":
    """The base model: basic loss only, no perturbation."""
    return cls(terms=(), **kwargs)

  def to_dict(self):
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=1, sort_keys=True)

  @classmethod
  def from_dict(cls, d) -> "MICConfig":
    return cls(**d)

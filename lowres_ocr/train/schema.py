"""The schema every training config passes (pydantic): unknown keys and wrong types are errors.

``model``, ``model_changes`` and ``loss_weights`` are partial sections: they pass on only the keys a config set,
because they are merged later over the network defaults or a checkpoint's architecture.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_serializer


def _number_from_string(value: Any) -> Any:
    """YAML reads ``1e-3`` (no dot) as a string; accept it as the number it spells."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


Number = Annotated[float, BeforeValidator(_number_from_string)]
NonNegative = Annotated[float, BeforeValidator(_number_from_string), Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Partial(_Section):
    """A section merged over defaults kept elsewhere: it passes on only the keys a config set."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class SRSpec(_Partial):
    kind: Optional[Literal["residual", "none"]] = None  # none: no branch, the SR image is the input resampled
    channels: Optional[Positive] = None
    blocks: Optional[Count] = None
    sequence: Optional[bool] = None
    tail_kernel: Optional[Positive] = None
    residual_scale: Optional[Number] = None


class RecognizerSpec(_Partial):
    type: Optional[Literal["ppocr", "resnet"]] = None
    width: Optional[Positive] = None  # ppocr
    init: Optional[Literal["rapidocr"]] = None  # ppocr: pretrained weights from the rapidocr wheel
    widths: Optional[list[Positive]] = None  # resnet
    hidden: Optional[Positive] = None  # resnet


class AttentionSpec(_Partial):
    hidden: Optional[Positive] = None
    embed: Optional[Positive] = None
    max_len: Optional[Positive] = None


class GeometrySpec(_Section):
    """The network input geometry (``lowres_ocr.core.geometry.Geometry``): given whole, not merged."""

    kind: Literal["squeeze", "aspect"]
    height: Positive
    width: Positive
    sr_scale: Positive = 2


class ModelSpec(_Partial):
    """``model`` (merged over ``lowres_ocr.network.DEFAULT_MODEL``) and ``model_changes`` (over a checkpoint's)."""

    charset: Optional[Literal["ascii", "ppocr"]] = None  # the recognizer head's classes (lowres_ocr.core.charset)
    geometry: Optional[GeometrySpec] = None

    sr: Optional[SRSpec] = None
    rectifier: Optional[bool] = None
    recognizer: Optional[RecognizerSpec] = None
    decoder: Optional[Literal["ctc", "attention"]] = None
    contrastive_dim: Optional[Positive] = None
    attention: Optional[AttentionSpec] = None


#: The weighted loss parts (``lowres_ocr.network.model.DEFAULT_LOSS_WEIGHTS``; ``distill``: KL to the frozen
#: pretrained PP-OCR recognizer reading the HR crop).
LOSS_PARTS = ("rec", "rec_hr", "sr", "sr_gradient", "contrastive", "feature", "distill")
LossWeights = create_model(
    "LossWeights", __base__=_Partial, __doc__="Merged over ``lowres_ocr.network.DEFAULT_LOSS_WEIGHTS`` by the trainer.",
    contrastive_subset=(Optional[Count], None),  # InfoNCE on the first N pairs of a batch (0: all)
    **{part: (Optional[NonNegative], None) for part in LOSS_PARTS},
)


class TrainSource(_Section):
    path: str
    labels: str = "labels.tsv"
    weight: Annotated[float, BeforeValidator(_number_from_string), Field(gt=0)] = 1.0
    degrade: Literal["seed", "express"] = "seed"
    holdout_every: Count = 0  # every N-th sample is held out for validation


class ValSet(_Section):
    path: str
    labels: str = "labels.tsv"
    limit: Optional[Positive] = None
    holdout_every: Count = 0


class DataSpec(_Section):
    train: Annotated[list[TrainSource], Field(min_length=1)]
    val: Optional[ValSet] = None


class LearningRates(_Section):
    sr: NonNegative
    recognizer: NonNegative
    projection: NonNegative


class TrainSpec(_Section):
    batch_size: Positive  # per process
    steps: Positive
    lr: LearningRates
    weight_decay: NonNegative = 0.0
    warmup_steps: Count = 0
    grad_clip: Optional[NonNegative] = None  # None or 0: no clipping
    checkpoint_every: Positive = 100
    keep_every: Count = 0  # also keep the checkpoint of every N-th step as step<N>.pt (the candidates of an average)
    val_every: Count = 0  # 0: no validation
    log_every: Positive = 10
    num_workers: Count = 0
    amp: Literal["auto", "bf16"] | bool = "auto"  # auto/bf16/true: bf16 autocast on CUDA
    tensorboard: bool = False
    freeze: list[Literal["sr", "recognizer", "projection"]] = []
    hr_per_batch: Count = 0  # the first N samples of every batch read their HR crop (else 5 % of samples, at random)


class TrainingConfig(_Section):
    seed: int = 1
    output_dir: str
    init_from: Optional[str] = None  # a checkpoint: its weights and architecture (``model`` is then ignored)
    resume_from: Optional[str] = None  # a training snapshot continued from when <output_dir>/last.pt does not exist
    model_changes: Optional[ModelSpec] = None  # merged over init_from's architecture
    reinit: list[Literal["recognizer"]] = []  # parts of init_from put back to their pretrained start
    model: Optional[ModelSpec] = None
    loss_weights: LossWeights = LossWeights()
    data: DataSpec
    train: TrainSpec

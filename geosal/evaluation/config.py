"""Settings of ``geosal evaluate`` and what they reduce relative to the paper.

The defaults are the *reduced* protocol sized for a 2-core CPU (about two
hours for the retraining protocol: see ``docs/evaluation.md`` for the
measurements they were sized from). Everything is configurable, up to the
paper's setting where the hardware allows.

:class:`EvaluationConfig` is a pydantic model like the run configuration
(:mod:`geosal.config`): every field states its type, range, help text and, in
an :class:`~geosal.evaluation.options.Option`, how it is written on the command
line, from which ``geosal evaluate``'s options are generated. Importing this
module does not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from geosal.evaluation.catalog import KAR_ROAR_DEFAULT, MAIN_METHODS, layer_methods, method_names
from geosal.evaluation.errors import EvaluationError
from geosal.evaluation.options import (
    INTEGER,
    INTEGERS,
    NAMES,
    NUMBER,
    PATH,
    PERCENTAGE,
    PERCENTAGES,
    SWITCH,
    TEXT,
    WORDS,
    ZERO_IS_NONE,
    Option,
)
from geosal.evaluation.paths import default_paths, portable, project_root

Protocol = Literal["kar-roar", "road", "deletion", "layers"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
DEFAULT_PROTOCOLS = ("layers", "kar-roar")
PAPER_PERCENTAGES = (0.1, 0.3, 0.5, 0.7, 0.9)


def _strict_fraction(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"{value:g} is not a fraction strictly between 0 and 1 (a percentage between 0 and 100)")
    return value


Fraction = Annotated[float, AfterValidator(_strict_fraction)]
"""A fraction strictly between 0 and 1."""

IO, RETRAIN, LAYERS, EVAL, METHOD, COMPUTE = (
    "data and outputs", "KAR / ROAR retraining", "per-layer protocol (layers)", "ROAD and deletion / insertion",
    "method options", "compute",
)
"""The argument groups of ``geosal evaluate --help``."""


class EvaluationConfigError(EvaluationError):
    """An invalid evaluation setting; the one-line message names the field."""


def _default_path(name: str) -> Path:
    return default_paths(project_root())[name]


class EvaluationConfig(BaseModel):
    """Everything a run of ``geosal evaluate`` depends on (each field's description says what it is).

    Immutable; unknown fields and invalid values raise :class:`EvaluationConfigError`
    whose message names the field, e.g. ``epochs: Input should be greater than or equal to 1 (got 0)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Annotated[Path, Field(default_factory=lambda: _default_path("data"),
                                description="folder-per-class image collection (UC Merced)"), Option(IO, PATH)]
    results: Annotated[Path, Field(default_factory=lambda: _default_path("results"),
                                   description="where the CSV / Markdown / plots and the per-cell JSON go"), Option(IO, PATH)]
    cache: Annotated[Path, Field(default_factory=lambda: _default_path("cache"),
                                 description="where saliency maps are cached (large; keep it out of git)"), Option(IO, PATH)]
    model: Annotated[str | None, Field(description="model to explain: a load_model source (a checkpoint, a torchvision name)"),
                     Option(IO, TEXT, shown_default="the shipped ucmerced-resnet18")] = None
    protocols: Annotated[tuple[Protocol, ...], Field(min_length=1, description="protocols to run: kar-roar, road, deletion, "
                                                     "layers, or all"), Option(IO, WORDS, flag="--protocol")] = DEFAULT_PROTOCOLS

    methods: Annotated[tuple[str, ...], Field(description="methods of the retraining protocol: names (geosal evaluate "
                                              "--list-methods), 'all' or 'default'"),
                       Option(RETRAIN, NAMES, shown_default="'default'")] = KAR_ROAR_DEFAULT
    percentages: Annotated[tuple[Fraction, ...], Field(min_length=1, description="percentages of the pixels kept (KAR) / "
                                                       "removed (ROAR)"), Option(RETRAIN, PERCENTAGES)] = PAPER_PERCENTAGES
    network: Annotated[str, Field(description="architecture retrained from scratch on the masked images (a torchvision "
                                  "classifier or resnet10; 'model': the explained model's)"), Option(RETRAIN, TEXT)] = "resnet10"
    retrain_seeds: Annotated[tuple[int, ...], Field(min_length=1, description="retraining seeds: every cell is retrained "
                                                    "once per seed (initial weights, batch order, augmentation)"),
                             Option(RETRAIN, INTEGERS)] = (0, 1, 2)
    image_size: Annotated[int, Field(ge=16, description="side of the images the networks are retrained on, px"),
                          Option(RETRAIN, INTEGER)] = 64
    saliency_size: Annotated[int | None, Field(ge=16, description="side of the images the explained model computes the "
                                               "retraining protocols' saliency at, px (0: the model's training size); the "
                                               "maps are area-averaged to the retraining size"), Option(RETRAIN, ZERO_IS_NONE)] = 128
    epochs: Annotated[int, Field(ge=1, description="epochs of every retraining"), Option(RETRAIN, INTEGER)] = 16
    batch_size: Annotated[int, Field(ge=1, description="retraining batch size"), Option(RETRAIN, INTEGER)] = 64
    lr: Annotated[float, Field(gt=0, description="peak SGD learning rate"), Option(RETRAIN, NUMBER)] = 0.1
    validate_every: Annotated[int, Field(ge=1, description="validate every N epochs during a retraining (and after the "
                                         "last)"), Option(RETRAIN, INTEGER)] = 4
    warmup_epochs: Annotated[int, Field(ge=0, description="epochs of linear learning-rate warm-up"), Option(RETRAIN, INTEGER)] = 1
    crop: Annotated[int | None, Field(ge=1, description="training crop side, px (0: 7/8 of the retraining size)"),
                    Option(RETRAIN, ZERO_IS_NONE)] = None
    min_crop_area: Annotated[float, Field(gt=0, le=1, description="smallest random resized crop, fraction of the image area"),
                             Option(RETRAIN, NUMBER)] = 0.5
    colour_jitter: Annotated[float, Field(ge=0, description="strength of the brightness, contrast and saturation jitter "
                                          "(0: off)"), Option(RETRAIN, NUMBER)] = 0.2
    mix_probability: Annotated[float, Field(ge=0, le=1, description="chance per batch of MixUp or CutMix"),
                               Option(RETRAIN, NUMBER)] = 0.0
    label_smoothing: Annotated[float, Field(ge=0, lt=1, description="cross-entropy label smoothing"), Option(RETRAIN, NUMBER)] = 0.1
    train_per_class: Annotated[int | None, Field(ge=1, description="first N training images per class (0: all)"),
                               Option(RETRAIN, ZERO_IS_NONE)] = None
    val_per_class: Annotated[int | None, Field(ge=1, description="first N validation images per class (0: all)"),
                             Option(RETRAIN, ZERO_IS_NONE)] = None
    share_random: Annotated[bool, Field(description="the random map's ROAR(p) cell is its KAR(1 - p) cell (both keep a "
                                        "uniformly random 1 - p of the pixels, as the paper's Table 5 reuses them); off: "
                                        "retrain random ROAR(p)"), Option(RETRAIN, SWITCH)] = True
    reference: Annotated[bool, Field(description="also retrain on unmasked images (the 100%-kept reference)"),
                         Option(RETRAIN, SWITCH)] = True

    layer_statistics: Annotated[tuple[str, ...], Field(description="Table 1 statistics of the layers protocol"),
                                Option(LAYERS, NAMES, shown_default="smoe")] = ("smoe",)
    layer_seeds: Annotated[tuple[int, ...], Field(min_length=1, description="retraining seeds of the layers protocol"),
                           Option(LAYERS, INTEGERS)] = (0,)
    layer_kar: Annotated[Fraction, Field(description="KAR: percentage of the pixels kept (paper: 2.5)"),
                         Option(LAYERS, PERCENTAGE)] = 0.025
    layer_roar: Annotated[Fraction, Field(description="ROAR: percentage of the pixels removed (paper: 10)"),
                          Option(LAYERS, PERCENTAGE)] = 0.10

    eval_methods: Annotated[tuple[str, ...], Field(description="methods of ROAD and deletion / insertion: names, 'all' or "
                                                   "'default'"), Option(EVAL, NAMES, shown_default="'all'")] = MAIN_METHODS
    eval_size: Annotated[int | None, Field(ge=16, description="image side, px (0: the model's training size)"),
                         Option(EVAL, ZERO_IS_NONE)] = None
    eval_per_class: Annotated[int | None, Field(ge=1, description="validation images per class (0: all 16)"),
                              Option(EVAL, ZERO_IS_NONE)] = 8
    road_noise: Annotated[float, Field(ge=0, description="noise of the ROAD imputation, normalised units"),
                          Option(EVAL, NUMBER)] = 0.01
    deletion_steps: Annotated[int, Field(ge=1, description="steps of the deletion / insertion curves"),
                              Option(EVAL, INTEGER)] = 20
    deletion_substrate: Annotated[Literal["mean", "blur"], Field(description="what deleted pixels become"),
                                  Option(EVAL, TEXT)] = "mean"

    seed: Annotated[int, Field(description="seeds the maps: the random maps, the SmoothGrad noise and the tie-breaking "
                                           "of the masks (the retrainings have --retrain-seeds)"),
                    Option(METHOD, INTEGER)] = 0
    nt_samples: Annotated[int, Field(ge=1, description="SmoothGrad samples (paper: 15)"), Option(METHOD, INTEGER)] = 15
    noise_level: Annotated[float, Field(ge=0, description="SmoothGrad noise, fraction of the input range"),
                           Option(METHOD, NUMBER)] = 0.15
    ig_steps: Annotated[int, Field(ge=1, description="Integrated Gradients steps"), Option(METHOD, INTEGER)] = 20
    channel_reduce: Annotated[Literal["sum", "max"], Field(description="how gradient attributions are reduced over the "
                                                           "colour channels"), Option(METHOD, TEXT)] = "sum"
    saliency_batch: Annotated[int, Field(ge=1, description="images per saliency batch"), Option(METHOD, INTEGER)] = 16
    timing_images: Annotated[int, Field(ge=1, description="validation images each method is timed on, alone"),
                             Option(METHOD, INTEGER)] = 32

    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="where the saliency, the retraining "
                                 "and the evaluation run: cpu, cuda, cuda:N or auto (cuda when available)"),
                      Option(COMPUTE, TEXT)] = "auto"
    bf16: Annotated[bool, Field(description="bfloat16 autocast for retraining and the evaluation forward passes, on "
                                "devices that compute bfloat16 in hardware (CUDA GPUs, CPUs with AVX512-BF16 or AMX; elsewhere "
                                "float32, since emulated bfloat16 is several times slower); off: float32 everywhere"),
                  Option(COMPUTE, SWITCH)] = True
    threads: Annotated[int | None, Field(ge=1, description="torch CPU threads (0: torch's default)"),
                       Option(COMPUTE, ZERO_IS_NONE)] = None

    def __init__(self, **values: Any):
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise EvaluationConfigError(_describe(error)) from None

    @field_validator("protocols", mode="before")
    @classmethod
    def _expand_all(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return tuple(dict.fromkeys(p for name in value for p in (PROTOCOLS if name == "all" else (name,))))
        return value

    @field_validator("methods", "eval_methods")
    @classmethod
    def _known_methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        method_names(value)
        return value

    @field_validator("layer_statistics")
    @classmethod
    def _known_statistics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        layer_methods(value)
        return value

    @property
    def retrain_crop(self) -> int:
        """The retraining crop side in px: ``crop``, else 7/8 of ``image_size`` (at least 8)."""
        return self.crop if self.crop is not None else max(8, round(self.image_size * 7 / 8))

    def to_dict(self) -> dict:
        """Plain values; paths relative to the project (never absolute machine paths)."""
        return {k: (portable(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in self}


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"unknown evaluation setting {key!r}"
    message = first["msg"].removeprefix("Value error, ")
    return f"{key}: {message}" + (f" (got {first['input']!r})" if first["type"] != "value_error" else "")


PAPER = {
    "network": "ResNet-50 (Hooker et al.'s setting), trained from scratch",
    "dataset": "ImageNet (1.28 M training images, 50 k validation), plus Places and COWC for Table 1",
    "image_size": "224 px",
    "epochs": "the full ResNet schedule of He et al. (90 epochs) for every KAR / ROAR retraining",
    "methods": "3 gradient baselines with and without SmoothGrad-squared, SMOE Scale with 3 weightings, 2 other statistics",
    "percentages": "10, 30, 50, 70, 90 %",
    "layers": "masking inside the network at each scale, fine-tuning the layers after it for 25 epochs",
}


def reductions(
    config: EvaluationConfig, model_size: int, train_images: int, val_images: int, eval_images: int
) -> list[tuple[str, str, str]]:
    """``(aspect, paper, here)`` rows: what this run reduces relative to the paper."""
    saliency = config.saliency_size or model_size
    eval_size = config.eval_size or model_size
    rows = [
        ("network", PAPER["network"], f"{config.network} trained from scratch" + (
            " (the explained model's architecture)" if config.network == "model" else
            "; the explained model is a ResNet-18: a smaller network makes the retrainings affordable on a CPU")),
        ("dataset", PAPER["dataset"], f"UC Merced Land Use, 21 classes: {train_images} training / {val_images} validation images "
                                      f"(fixed every-fifth-image split)"),
        ("retraining image size", PAPER["image_size"],
         f"{config.image_size} px (UC Merced is 256 px; the explained model was trained at {model_size} px)"),
        ("saliency computed at", "224 px", f"{saliency} px with the explained model, maps area-averaged to {config.image_size} px"),
        ("retraining schedule", PAPER["epochs"],
         f"{config.epochs} epochs, SGD lr {config.lr}, batch {config.batch_size}, {config.retrain_crop} px crops; "
         f"every cell retrained with seeds {', '.join(map(str, config.retrain_seeds))} (the maps' seed is {config.seed})"),
        ("retraining methods", PAPER["methods"], ", ".join(config.methods)),
        ("percentages", PAPER["percentages"], ", ".join(f"{100 * p:g}" for p in config.percentages) + " %"),
        ("SmoothGrad", "15 samples (Hooker et al.)", f"{config.nt_samples} samples, noise {config.noise_level:g} of the input range"),
        ("Integrated Gradients", "Hooker et al.'s setting", f"{config.ig_steps} steps (captum's default: 50), baseline 0 after "
                                                            "normalisation, i.e. the dataset-mean image"),
        ("ROAD / deletion", "not in the paper", f"{eval_images} validation images at {eval_size} px, original model, no retraining"),
        ("per-layer scores (Table 1)", PAPER["layers"],
         f"`layers` protocol: each single-scale map used as an input-pixel mask, KAR {100 * config.layer_kar:g} % / "
         f"ROAR {100 * config.layer_roar:g} %, full retraining as above (seeds {', '.join(map(str, config.layer_seeds))}); "
         "its scores on the even image ids give SMOE's learned layer weights"),
    ]
    return rows


__all__ = [
    "DEFAULT_PROTOCOLS", "PAPER", "PAPER_PERCENTAGES", "PROTOCOLS", "EvaluationConfig", "EvaluationConfigError", "reductions",
]

"""Settings of ``geosal evaluate`` and what they reduce relative to the paper.

The defaults are the *reduced* protocol sized for a 2-core CPU (about two
hours for the retraining protocol: see ``docs/evaluation.md`` for the
measurements they were sized from). Everything is configurable, up to the
paper's setting where the hardware allows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from geosal.evaluation.methods import (
    KAR_ROAR_DEFAULT,
    MAIN_METHODS,
    TABLE1_STATISTICS,
    EvaluationError,
    get_methods,
    layer_methods,
)

PROTOCOLS = ("kar-roar", "road", "deletion", "layers")
DEFAULT_PROTOCOLS = ("kar-roar",)
PAPER_PERCENTAGES = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class EvaluationConfig:
    """Everything a run of ``geosal evaluate`` depends on.

    Attributes (by protocol):
        data: folder-per-class image collection (UC Merced).
        results: where CSV / Markdown / plots and the per-cell JSON go.
        cache: where saliency maps are cached (large; keep it out of git).
        model: ``load_model`` source; ``None`` = the shipped ``ucmerced-resnet18``.
        protocols: any of ``kar-roar``, ``road``, ``deletion``, ``layers``.

        methods: methods of the retraining protocol (names or ``all`` / ``default``).
        percentages: fractions kept (KAR) / removed (ROAR).
        image_size: side of the images the networks are retrained on.
        saliency_size: side of the images the model computes saliency on
            (``None``: the model's training size); maps are area-averaged to ``image_size``.
        epochs, batch_size, lr, warmup_epochs, crop, min_crop_area, colour_jitter,
        mix_probability, label_smoothing: retraining hyper-parameters
            (``crop`` ``None`` = 7/8 of ``image_size``).
        train_per_class, val_per_class: first images of each class used (``None`` = all).
        share_random: the random map's ROAR(p) cell is the KAR(1 - p) cell
            (both keep a uniformly random ``1 - p`` of the pixels; the paper's
            Table 5 reuses them the same way).
        reference: also retrain on unmasked images (the 100%-kept reference).

        layer_statistics: Table 1 statistics of the ``layers`` protocol.
        layer_kar, layer_roar: its KAR kept / ROAR removed fractions (paper: 2.5% / 10%).

        eval_methods: methods of ROAD and deletion / insertion.
        eval_size: image side for ROAD and deletion (``None``: the model's training size).
        eval_per_class: validation images per class for ROAD / deletion (``None`` = all 16).
        road_noise: noise of the ROAD imputation (normalised units).
        deletion_steps, deletion_substrate: deletion / insertion curve steps and fill.

        seed, nt_samples, noise_level, ig_steps, channel_reduce: method options
            (see :class:`geosal.evaluation.methods.MethodOptions`).
        saliency_batch: images per saliency batch.
        timing_images: validation images each method is timed on, alone.
        bf16: bfloat16 autocast for retraining and for the evaluation forward passes.
        threads: torch CPU threads (``None``: torch's default).
    """

    data: Path
    results: Path = Path("results/ucmerced")
    cache: Path = Path("runs/evaluate-cache")
    model: str | None = None
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS

    methods: tuple[str, ...] = KAR_ROAR_DEFAULT
    percentages: tuple[float, ...] = PAPER_PERCENTAGES
    image_size: int = 64
    saliency_size: int | None = 128
    epochs: int = 5
    batch_size: int = 32
    lr: float = 0.05
    warmup_epochs: int = 1
    crop: int | None = None
    min_crop_area: float = 0.5
    colour_jitter: float = 0.2
    mix_probability: float = 0.0
    label_smoothing: float = 0.1
    train_per_class: int | None = None
    val_per_class: int | None = None
    share_random: bool = True
    reference: bool = True

    layer_statistics: tuple[str, ...] = tuple(TABLE1_STATISTICS)
    layer_kar: float = 0.025
    layer_roar: float = 0.10

    eval_methods: tuple[str, ...] = MAIN_METHODS
    eval_size: int | None = None
    eval_per_class: int | None = 8
    road_noise: float = 0.01
    deletion_steps: int = 20
    deletion_substrate: str = "mean"

    seed: int = 0
    nt_samples: int = 15
    noise_level: float = 0.15
    ig_steps: int = 4
    channel_reduce: str = "sum"
    saliency_batch: int = 16
    timing_images: int = 8
    bf16: bool = True
    threads: int | None = None

    def __post_init__(self):
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if unknown:
            raise EvaluationError(f"unknown protocol(s) {unknown}; choose from {', '.join(PROTOCOLS)}")
        for p in (*self.percentages, self.layer_kar, self.layer_roar):
            if not 0 < p < 1:
                raise EvaluationError(f"percentages are fractions strictly between 0 and 1, got {p}")
        if self.image_size < 16 or (self.saliency_size is not None and self.saliency_size < 16):
            raise EvaluationError("image sizes below 16 px are not supported")
        if self.epochs < 1:
            raise EvaluationError("epochs must be >= 1")
        get_methods(self.methods), get_methods(self.eval_methods), layer_methods(self.layer_statistics)  # known names

    @property
    def retrain_crop(self) -> int:
        return self.crop if self.crop is not None else max(8, round(self.image_size * 7 / 8))

    def with_overrides(self, **changes) -> EvaluationConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """Plain values; paths relative to the project (never absolute machine paths)."""
        return {k: (portable(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


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
        ("network", PAPER["network"], "ResNet-18 trained from scratch (the shipped geosal model's architecture)"),
        ("dataset", PAPER["dataset"], f"UC Merced Land Use, 21 classes: {train_images} training / {val_images} validation images "
                                      f"(fixed every-fifth-image split)"),
        ("retraining image size", PAPER["image_size"],
         f"{config.image_size} px (UC Merced is 256 px; the explained model was trained at {model_size} px)"),
        ("saliency computed at", "224 px", f"{saliency} px with the explained model, maps area-averaged to {config.image_size} px"),
        ("retraining schedule", PAPER["epochs"],
         f"{config.epochs} epochs, SGD lr {config.lr}, batch {config.batch_size}, {config.retrain_crop} px crops, "
         f"same seed for every cell"),
        ("retraining methods", PAPER["methods"], ", ".join(config.methods)),
        ("percentages", PAPER["percentages"], ", ".join(f"{100 * p:g}" for p in config.percentages) + " %"),
        ("SmoothGrad", "15 samples (Hooker et al.)", f"{config.nt_samples} samples, noise {config.noise_level:g} of the input range"),
        ("Integrated Gradients", "Hooker et al.'s setting", f"{config.ig_steps} steps, black-mean (0) baseline"),
        ("ROAD / deletion", "not in the paper", f"{eval_images} validation images at {eval_size} px, original model, no retraining"),
        ("per-layer scores (Table 1)", PAPER["layers"],
         f"optional `layers` protocol: each single-scale map used as an input-pixel mask, KAR {100 * config.layer_kar:g} % / "
         f"ROAR {100 * config.layer_roar:g} %, full retraining as above"),
    ]
    return rows


def project_root() -> Path:
    """The source checkout holding geosal (where ``results/`` and ``runs/`` go), else the working folder."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def portable(value: str | Path) -> str:
    """A path as it may be written into committed files: relative to the project
    (``results/ucmerced``) or to its parent (``../shared/data/ucmerced``) when it
    lies there; anything else unchanged."""
    text = str(value)
    path = Path(text)
    if not path.is_absolute():
        return text
    root = project_root()
    for base, prefix in ((root, ""), (root.parent, "../")):
        try:
            relative = path.resolve().relative_to(base.resolve())
        except ValueError:
            continue
        return prefix + (str(relative) if str(relative) != "." else ".")
    return text


def default_paths(project: Path) -> dict[str, Path]:
    """Default data / results / cache paths relative to the project folder."""
    return {
        "data": project.parent / "shared" / "data" / "ucmerced",
        "results": project / "results" / "ucmerced",
        "cache": project / "runs" / "evaluate-cache",
    }


__all__ = [
    "DEFAULT_PROTOCOLS", "PAPER", "PAPER_PERCENTAGES", "PROTOCOLS", "EvaluationConfig", "default_paths", "portable",
    "project_root", "reductions",
]

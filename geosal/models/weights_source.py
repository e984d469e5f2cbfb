"""Where a model's weights come from, as a typed value instead of a prefixed string.

In the spirit of TorchGeo's and torchvision's weight enums, a
:class:`WeightsSource` names its kind (:class:`WeightsKind`), the weights
within that kind (a library's weight name, a shipped model, a file) and, once
the client has resolved it, the SHA-256 of the weight file's bytes. The pin
makes a spec an exact description: a worker on another machine, or a rerun
next week, loads those bytes or refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class WeightsKind(str, Enum):
    """The kinds of weight sources geosal can load."""

    NONE = "none"
    """Random initialisation (saliency of an untrained network)."""
    SHIPPED = "shipped"
    """A checkpoint inside the geosal package (``name`` = the model's name)."""
    CHECKPOINT = "checkpoint"
    """A local state-dict file (``name`` = its absolute path on the client)."""
    TORCHVISION = "torchvision"
    """A torchvision weight enum member (``name`` = ``IMAGENET1K_V2``, ...), from torch.hub's cache."""
    TIMM = "timm"
    """timm pretrained weights (``name`` = ``convnext_tiny.fb_in1k``, ...), from timm's own cache."""
    TORCHGEO = "torchgeo"
    """A TorchGeo weight enum member (``name`` = ``ResNet50_Weights.SENTINEL2_ALL_MOCO``, ...), from torch.hub's cache."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class WeightsSource:
    """A typed weights source; small, frozen, hashable and JSON round-trippable.

    Attributes:
        kind: a :class:`WeightsKind`.
        name: the weights within their kind (see :class:`WeightsKind`); empty for ``none``.
        sha256: lowercase hex SHA-256 of the weight file's bytes, pinned when the
            client resolved the spec; empty when not pinned (random weights, or a
            spec built by hand).
    """

    kind: WeightsKind = WeightsKind.NONE
    name: str = ""
    sha256: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", WeightsKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in WeightsKind)
            raise ValueError(f"unknown weights kind {self.kind!r}; one of: {kinds}") from None
        if self.kind is not WeightsKind.NONE and not self.name:
            raise ValueError(f"{self.kind.value} weights need a name")
        if self.sha256 and (len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")

    @property
    def is_random(self) -> bool:
        """Whether the network keeps its random initialisation."""
        return self.kind is WeightsKind.NONE

    def pinned(self, sha256: str) -> WeightsSource:
        """The same source pinned to the given file digest."""
        return WeightsSource(self.kind, self.name, sha256)

    def __str__(self) -> str:
        """``kind:name`` (``none`` alone): the form earlier geosal versions stored."""
        return "none" if self.is_random else f"{self.kind.value}:{self.name}"

    def to_dict(self) -> dict:
        """Plain JSON dict ``{"kind", "name", "sha256"}``."""
        return {"kind": self.kind.value, "name": self.name, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: dict | str) -> WeightsSource:
        """Inverse of :meth:`to_dict`; also reads the ``"kind:name"`` strings earlier versions stored.

        Raises:
            ValueError: unknown kind or keys, in one line.
        """
        if isinstance(data, str):
            return cls.parse(data)
        if not isinstance(data, dict):
            raise ValueError(f"weights must be a mapping or a 'kind:name' string, got {type(data).__name__}")
        unknown = set(data) - {"kind", "name", "sha256"}
        if unknown:
            raise ValueError(f"unknown weights keys: {', '.join(sorted(unknown))}")
        return cls(data.get("kind", "none"), data.get("name", ""), data.get("sha256", ""))

    @classmethod
    def parse(cls, text: str) -> WeightsSource:
        """A source from its ``kind:name`` string (``none``, ``torchvision:IMAGENET1K_V2``,
        ``checkpoint:/abs/path.pt``, ``shipped:ucmerced-resnet18``, ...), not pinned."""
        kind, _, name = text.partition(":")
        return cls(kind, name if kind != "none" else "")


NO_WEIGHTS = WeightsSource()

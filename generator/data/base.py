"""The contract of image data sets: indexable, identifiable, decoded one image at a time.

An :class:`ImageSource` is a finite, ordered collection of images (a folder, Imagenette, the
synthetic demo world). Its :meth:`~ImageSource.identity` names the exact sample list, so cached
activations are keyed by it. Images are decoded to RGB ``uint8`` arrays; an image that cannot be
decoded raises :class:`BadImage`, which loaders count and skip (never a crash, never silent).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


class BadImage(Exception):
    """An image that cannot be used; ``reason`` is a short phrase ("truncated", "zero bytes")."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class ImageSource(abc.ABC):
    """A finite, ordered, deterministic collection of labelled or unlabelled images.

    Attributes:
        name: a short name for messages ("folder:/data/imagenet/train", "synthetic").
        class_names: class name per label index; empty when the source has no labels.
    """

    name: str = "images"
    class_names: tuple[str, ...] = ()

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def identity(self) -> str:
        """A digest of the sample list (paths, sizes, mtimes; or generator parameters)."""

    @abc.abstractmethod
    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as ``uint8 [H, W, 3]`` RGB; raises :class:`BadImage` if unusable."""

    def label(self, index: int) -> int:
        """Class index of image ``index``, or -1 when unknown."""
        return -1

    def describe(self, index: int) -> str:
        """Where image ``index`` comes from, for messages (a path, or ``synthetic #12``)."""
        return f"{self.name} #{index}"


@dataclass
class LoadReport:
    """What a pass over a source skipped or converted, by reason (reported in one warning)."""

    loaded: int = 0
    converted: int = 0
    skipped: int = 0
    reasons: dict[str, int] | None = None
    examples: list[str] | None = None

    def skip(self, err: BadImage, max_examples: int = 5) -> None:
        self.skipped += 1
        self.reasons = self.reasons or {}
        self.reasons[err.reason] = self.reasons.get(err.reason, 0) + 1
        self.examples = self.examples or []
        if len(self.examples) < max_examples:
            self.examples.append(f"{err.where} ({err.reason})")

    def summary(self) -> str | None:
        """One warning line naming counts and the first few paths, or None if nothing skipped."""
        if not self.skipped:
            return None
        kinds = ", ".join(f"{n} {r}" for r, n in sorted((self.reasons or {}).items()))
        first = "; ".join(self.examples or [])
        return f"skipped {self.skipped} unusable image(s) ({kinds}); first: {first}"

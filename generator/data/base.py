"""The contract of image data sets: indexable, identifiable, decoded one image at a time.

An :class:`ImageSource` is a finite, ordered collection of images (a folder, Imagenette, the
synthetic demo world). Its :meth:`~ImageSource.identity` names the exact sample list, so cached
activations are keyed by it. Images are decoded to RGB ``uint8`` arrays; an image that cannot be
decoded raises :class:`BadImage`, which loaders count and skip (never a crash, never silent).
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class ImageDataWarning(UserWarning):
    """The one warning a pass over a source emits when it skipped or converted images."""


class BadImage(Exception):
    """An image that cannot be used; ``reason`` is a short phrase ("truncated", "zero bytes").

    ``reason`` is what reports count by, so keep it to a fixed vocabulary; ``detail`` (optional)
    carries the specifics ("24000x24000 pixels > 89478485"), shown with the example paths.
    """

    def __init__(self, where: str, reason: str, detail: str | None = None) -> None:
        self.where = where
        self.reason = reason
        self.detail = detail
        super().__init__(f"{where}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self) -> tuple[type[BadImage], tuple[str, str, str | None]]:
        # Rebuild from the fields, not from ``args``, so it crosses process boundaries.
        return (BadImage, (self.where, self.reason, self.detail))


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

    def read_noted(self, index: int) -> tuple[np.ndarray, str | None]:
        """Like :meth:`read`, plus the conversion made to reach RGB ``uint8`` ("CMYK", "16-bit"),
        or None when the image was stored that way. Loaders count these notes."""
        return self.read(index), None

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray | None:
        """Images ``indices`` as one ``uint8 [B, H, W, 3]`` array, or None.

        Sources that can decode many images faster together (the synthetic world) and whose
        images are all the same size and never bad override this; loaders then use it instead
        of per-image :meth:`read_noted`.
        """
        return None

    def label(self, index: int) -> int:
        """Class index of image ``index``, or -1 when unknown."""
        return -1

    def labels(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Class index of each of ``indices`` as ``int64 [B]`` (-1 where unknown); sources
        with a faster way than :meth:`label` one by one override this."""
        return np.array([self.label(int(i)) for i in indices], dtype=np.int64)

    def describe(self, index: int) -> str:
        """Where image ``index`` comes from, for messages (a path, or ``synthetic #12``)."""
        return f"{self.name} #{index}"


@dataclass
class LoadReport:
    """What a pass over a source loaded, skipped or converted, by reason (one warning at the end).

    Attributes:
        loaded: images delivered (converted ones included).
        converted: images delivered after a conversion to RGB ``uint8`` (CMYK, 16-bit...).
        skipped: images left out (:class:`BadImage`).
        reasons: skipped count per reason.
        examples: the first few skipped images, ``"path (reason)"``.
        conversions: converted count per conversion.
        converted_examples: the first few converted images, ``"path (conversion)"``.
    """

    loaded: int = 0
    converted: int = 0
    skipped: int = 0
    reasons: dict[str, int] | None = None
    examples: list[str] | None = None
    conversions: dict[str, int] | None = None
    converted_examples: list[str] | None = None

    def skip(self, err: BadImage, max_examples: int = 5) -> None:
        self.skipped += 1
        self.reasons = self.reasons or {}
        self.reasons[err.reason] = self.reasons.get(err.reason, 0) + 1
        self.examples = self.examples or []
        if len(self.examples) < max_examples:
            detail = f": {err.detail}" if err.detail else ""
            self.examples.append(f"{err.where} ({err.reason}{detail})")

    def convert(self, where: str, note: str, max_examples: int = 3) -> None:
        """Count one image delivered after conversion ``note`` (call :meth:`skip` for losses)."""
        self.converted += 1
        self.conversions = self.conversions or {}
        self.conversions[note] = self.conversions.get(note, 0) + 1
        self.converted_examples = self.converted_examples or []
        if len(self.converted_examples) < max_examples:
            self.converted_examples.append(f"{where} ({note})")

    def summary(self) -> str | None:
        """One line naming counts per reason and the first few paths; None if nothing happened."""
        parts = []
        if self.skipped:
            kinds = ", ".join(f"{n} {r}" for r, n in sorted((self.reasons or {}).items()))
            first = "; ".join(self.examples or [])
            parts.append(f"skipped {self.skipped} unusable image(s) ({kinds}); first: {first}")
        if self.converted:
            kinds = ", ".join(f"{n} {r}" for r, n in sorted((self.conversions or {}).items()))
            first = "; ".join(self.converted_examples or [])
            parts.append(f"converted {self.converted} image(s) to RGB ({kinds}); first: {first}")
        return " | ".join(parts) if parts else None

    def warn(self, source: str = "images", stacklevel: int = 2) -> None:
        """Emit the pass's one :class:`ImageDataWarning` (nothing when nothing was skipped or
        converted)."""
        text = self.summary()
        if text is not None:
            warnings.warn(f"{source}: {text}", ImageDataWarning, stacklevel=stacklevel + 1)

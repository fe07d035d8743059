"""A classifier whose answers are known, for counting patch-experiment flips by hand.

``QuadrantNet`` sees 16 px images as four 8 x 8 quadrants (TL, TR, BL, BR) and computes its
logits as a fixed linear function of each quadrant's mean colour (``R``, and the cyan level
``s = (G + B) / 2``), the rule :data:`WEIGHTS` and :data:`BIASES` state:

* ``rose``   = 0.3 + R_TL + R_TR + R_BR      red in a top or bottom-right quadrant holds a rose
* ``tulip``  = 0.6 * (s_TL + s_TR + s_BR)    cyan anywhere but bottom-left says tulip
* ``violet`` = 1.5 * s_BR                    cyan in the bottom-right corner says violet
* ``lily``   = 3 * R_BL - 1                  a red bottom-left quadrant says lily

So a rose image held by one red quadrant (its *anchor*) turns into a tulip when a cyan patch
covers the anchor (0.3 < 0.6), stays a rose when the patch goes elsewhere (the anchor's 1.3
beats at most 0.6 * 2), and a cyan patch covering the bottom-right quadrant makes a violet
(1.5) unless the rest of the image is cyan enough for tulip: the third class a rose can fall
to. :func:`reference_logits` applies the same rule in numpy (float64), independently of torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from generator.models.hooked import UserModel

#: Input side, and the quadrants' side.
SIDE = 16
HALF = SIDE // 2

LABELS = ("lily", "rose", "tulip", "violet")
LILY, ROSE, TULIP, VIOLET = range(4)

#: Quadrant -> (row, column) of the 2 x 2 grid of quadrants.
QUADRANTS = {"TL": (0, 0), "TR": (0, 1), "BL": (1, 0), "BR": (1, 1)}


def _rule() -> tuple[np.ndarray, np.ndarray]:
    """``([4, 12], [4])``: logits = W @ features + b, features ordered (channel, row, column)
    as ``AvgPool2d(8)`` then ``Flatten`` give them on ``[3, 16, 16]``."""

    def feature(channel: int, quadrant: str) -> int:
        row, column = QUADRANTS[quadrant]
        return channel * 4 + row * 2 + column

    weights = np.zeros((4, 12))
    biases = np.zeros(4)
    weights[LILY, feature(0, "BL")] = 3.0
    biases[LILY] = -1.0
    for quadrant in ("TL", "TR", "BR"):
        weights[ROSE, feature(0, quadrant)] = 1.0
        weights[TULIP, feature(1, quadrant)] = 0.3  # 0.6 * s = 0.3 * G + 0.3 * B
        weights[TULIP, feature(2, quadrant)] = 0.3
    biases[ROSE] = 0.3
    weights[VIOLET, feature(1, "BR")] = 0.75
    weights[VIOLET, feature(2, "BR")] = 0.75
    return weights, biases


WEIGHTS, BIASES = _rule()


def reference_logits(images: np.ndarray) -> np.ndarray:
    """``uint8 [N, 16, 16, 3]`` -> ``float64 [N, 4]`` logits by the module doc's rule."""
    x = images.astype(np.float64) / 255.0
    means = x.reshape(len(x), 2, HALF, 2, HALF, 3).mean(axis=(2, 4))  # [N, row, column, c]
    features = means.transpose(0, 3, 1, 2).reshape(len(x), 12)
    return features @ WEIGHTS.T + BIASES


class QuadrantNet(nn.Module):
    """``[B, 3, 16, 16]`` in [0, 1] -> logits ``[B, 4]``: quadrant means, then the rule."""

    def __init__(self) -> None:
        super().__init__()
        self.regions = nn.AvgPool2d(HALF)
        self.flat = nn.Flatten()
        self.head = nn.Linear(12, 4)
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(WEIGHTS))
            self.head.bias.copy_(torch.from_numpy(BIASES))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flat(self.regions(x)))


def build() -> UserModel:
    """The entry point (``[models.<name>] entry = "<this module>:build"``)."""
    return UserModel(
        module=QuadrantNet(),
        layers={"regions": "regions"},
        preprocess=lambda images: images,
        labels=LABELS,
        input_size=SIDE,
    )


def cyan(level: int) -> tuple[int, int, int]:
    return (0, level, level)


RED = (255, 0, 0)


def quadrant_image(**colours: tuple[int, int, int]) -> np.ndarray:
    """``uint8 [16, 16, 3]``: each named quadrant filled with its colour, the others black."""
    image = np.zeros((SIDE, SIDE, 3), dtype=np.uint8)
    for name, colour in colours.items():
        row, column = QUADRANTS[name]
        image[row * HALF : (row + 1) * HALF, column * HALF : (column + 1) * HALF] = colour
    return image

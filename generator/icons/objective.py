"""What each atlas icon maximizes, and how faithful the result is.

The objective (METHOD.md 5): the recipe's ``dot * max(0.1, cossim)^p`` of the cell's direction
at the layer's centre (:func:`generator.optvis.objectives.atlas_direction`, whitened when the
spec says so), plus the recipe's border penalty; tries are ranked by the direction term alone.

Calibration (``calibrate``, on by default). The recipe's direction term scales with the layer's
activations (``dot`` is a channel mean of ``a * v``) while its border penalty is in pixel units,
so their balance holds only for networks of Lucid InceptionV1's activation scale. On the demo
model (batch norm, inputs in [-1, 1]) the direction term at a cell's own activation is
~1e-3 and the border penalty wins: icons stay grey, fidelity no better than noise (measured,
bench/RESULTS.md "Atlas rendering"). So each icon's direction term is multiplied by
``CALIBRATED_VALUE / value(v)``, ``value(v)`` the term evaluated at ``a = v``: a positive
constant per icon, so every icon keeps the recipe's objective and its optimum, only its weight
against the border penalty is fixed (10 at the target; 10 and 100 gave equal fidelity).

Fidelity, for every icon: the cosine similarity between the activation the finished icon (as
saved, uint8) produces at the layer's centre and its cell's (unwhitened) direction. Whitening
steers icons toward ``v @ S``, the rarer parts of ``v``, so its icons score lower on this plain
measure than unwhitened ones (0.5..0.6 against ~0.8 on the demo model) while looking more
specific.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from generator.models.base import AtlasModel
    from generator.optvis.objectives import Objective

#: The calibrated direction term's value at a cell's own mean activation (see the module
#: docstring): the order of magnitude the recipe's term has for Lucid's InceptionV1 (an
#: estimate from its activation scale), chosen on the demo model where 10 and 100 rendered
#: equally faithful icons.
CALIBRATED_VALUE = 10.0


def icon_objective(
    layer: str,
    directions: np.ndarray,
    *,
    whitening: torch.Tensor | None,
    cossim_pow: float,
    border: bool,
    calibrate: bool,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[Objective, Objective]:
    """``(goal, direction)`` for a batch of cells: ``goal`` is optimized, ``direction`` (the
    plain recipe term) ranks the tries. ``directions`` is ``[B, C]``, ``whitening`` ``[C, C]``
    on ``device`` or None."""
    import torch

    from generator.optvis import objectives as obj

    v = torch.as_tensor(directions, device=device, dtype=dtype)
    direction = obj.atlas_direction(layer, v, whitening=whitening, cossim_pow=cossim_pow)
    term = direction
    if calibrate:
        white = None if whitening is None else whitening.detach().double().cpu().numpy()
        weights = calibration(directions, white, cossim_pow)
        term = weighted(direction, torch.as_tensor(weights, device=device, dtype=dtype))
    goal = term + obj.border_penalty() if border else term
    return goal, direction


def target_value(
    directions: np.ndarray, whitening: np.ndarray | None, cossim_pow: float
) -> np.ndarray:
    """The atlas objective ``[B] float64`` of each direction evaluated at ``a = v`` itself (the
    cell's mean activation): ``dot = mean_c(v * v')``, ``v' = v @ S``, times
    ``max(0.1, dot / (1e-4 + |v|))^p``; positive for nonzero ``v`` (``S`` is positive definite)."""
    from generator.optvis.objectives import ATLAS_COSSIM_EPS, ATLAS_COSSIM_FLOOR

    v = np.asarray(directions, dtype=np.float64)
    target = v if whitening is None else v @ np.asarray(whitening, dtype=np.float64)
    dot = (v * target).mean(axis=1)
    cossim = np.maximum(ATLAS_COSSIM_FLOOR, dot / (ATLAS_COSSIM_EPS + np.linalg.norm(v, axis=1)))
    return np.asarray(dot * cossim**cossim_pow)


def calibration(
    directions: np.ndarray, whitening: np.ndarray | None, cossim_pow: float
) -> np.ndarray:
    """Per-icon weights ``[B] float64 > 0``: ``CALIBRATED_VALUE / target_value`` (1 where the
    target value is not positive, e.g. a cell whose mean activation is zero)."""
    value = target_value(directions, whitening, cossim_pow)
    safe = np.where(value > 0, value, CALIBRATED_VALUE)
    return np.asarray(CALIBRATED_VALUE / safe)


def weighted(objective: Objective, weights: torch.Tensor) -> Objective:
    """``objective`` with element ``b``'s value multiplied by ``weights[b]``."""
    from generator.optvis.objectives import Objective

    fn = objective.__call__
    return Objective(
        lambda ctx: fn(ctx) * weights,
        f"calibrated({objective.description})",
        layers=objective.layers,
        batch=objective.batch,
    )


def icon_fidelity(
    model: AtlasModel,
    layer: str,
    icons: np.ndarray,
    directions: np.ndarray,
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
    batch: int = 256,
) -> np.ndarray:
    """Cosine similarity ``[B] float32`` in [-1, 1] between each icon's activation at the
    layer's centre ``(h // 2, w // 2)`` and its direction.

    Args:
        icons: ``[B, S, S, 3] uint8`` (or float in [0, 1]).
        directions: ``[B, C]`` float, the cells' mean activations.
    """
    import torch

    dtype = dtype or torch.float32
    out = np.zeros(len(icons), dtype=np.float32)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(icons), batch):
                chunk = torch.as_tensor(np.asarray(icons[start : start + batch]))
                images = chunk.to(device=device).permute(0, 3, 1, 2).to(dtype)
                if chunk.dtype == torch.uint8:
                    images = images / 255.0
                act = model.forward_to(images, [layer])[layer]
                h, w = act.shape[-2:]
                centre = act[:, :, h // 2, w // 2].double()
                v = torch.as_tensor(directions[start : start + batch], device=device).double()
                cos = torch.nn.functional.cosine_similarity(centre, v, dim=1, eps=1e-12)
                out[start : start + len(chunk)] = cos.float().cpu().numpy()
    finally:
        model.train(training)
    return out

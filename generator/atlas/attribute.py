"""Attribution of sampled activation vectors to every class (METHOD.md section 2).

For a sample ``h`` = the activation vector at position ``(y, x)`` of a layer,
``attr_c = h . d logit_c / d h`` for every class ``c``: activation times gradient, summed over
channels. All classes come out of ONE forward-mode pass: the directional derivative of the
logits along the tangent ``T`` that equals ``h`` at ``(y, x)`` and zero elsewhere is
``J T = sum_ch h_ch d logits / d a[ch, y, x]``, exactly ``attr`` for all ``K`` logits at once
(dual tensors of ``torch.autograd.forward_ad`` through ``model.logits_from(layer, .)``), for a
whole batch of samples at once. (``torch.func.jvp`` computes the same, with more per-op overhead
in Python: about 1.6x slower on the demo model.) Reverse mode would need one backward pass per class.

Convolutions and eval-mode batch norms propagate only the input's tangent during that pass
(:mod:`.tangents`: torch's own rule also convolves a zero weight tangent, 3 convolutions
instead of 2). When an operation of the model has no forward-mode derivative, the same ``J T`` comes from the
*double-vjp trick*: ``g(u) = J^T u`` is linear in ``u``, so the vector-Jacobian product of ``g``
with cotangent ``T`` is ``J T`` (two backward passes, still independent of ``K``).

The article back-propagated max-pooling through a smooth relaxation (``smooth_maxpool``): see
:func:`generator.models.base.relaxed_max_pool`, which keeps forward values and changes
derivatives of both modes.

The *readout* (``measure = "readout"``, an alternative to the article's ``"gradient"``):
``attr_c = logit_c(F_h) - logit_c(F_0)``, ``F_h`` the layer's map filled with ``h`` at every
position and ``F_0`` the map of zeros: what the rest of the network reads from the vector
alone. Where the rest is linear (the last layer before global average pooling and the
classifier, e.g. mixed5b of InceptionV1) it equals ``h . W_c``, i.e. the article's attribution
times the number of positions ``h * w``: the same ranking. Where the rest is far from linear
the gradient says little: on the demo model (batch norm; the logits come mostly from the
biases of later layers) the top attributed class of a mixed4c sample is the image's class for
19% of samples (chance: 8%), the readout's for 84% (bench/RESULTS.md, "Demo build").
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from generator.models.base import AtlasModel

log = logging.getLogger(__name__)

#: Attribution methods: ``jvp`` (forward mode), ``double-vjp`` (two reverse passes), ``auto``
#: (jvp, falling back to double-vjp for good the first time jvp fails).
METHODS = ("auto", "jvp", "double-vjp")

#: What an attribution measures: ``gradient`` (activation x gradient, the article's) or
#: ``readout`` (logits of the map filled with the vector minus those of the zero map).
MEASURES = ("gradient", "readout")


def position_tangent(activation: Tensor, positions: Tensor) -> Tensor:
    """The tangent that equals each sample's own activation vector at its position.

    Args:
        activation: ``[S, C, h, w]`` float.
        positions: ``[S, 2]`` int64 ``(y, x)``.

    Returns:
        ``[S, C, h, w]``, zero except ``T[s, :, y_s, x_s] = activation[s, :, y_s, x_s]``.
    """
    import torch

    tangent = torch.zeros_like(activation)
    at = _sample_index(activation, positions)
    tangent[at] = activation[at]
    return tangent


def _sample_index(activation: Tensor, positions: Tensor) -> tuple[Tensor, slice, Tensor, Tensor]:
    """``(rows, :, ys, xs)`` on ``activation``'s device: ``activation[index]`` is ``[S, C]``,
    row ``s`` the vector of sample ``s`` at its position ``positions[s] = (y, x)``."""
    import torch

    positions = positions.to(activation.device)
    rows = torch.arange(activation.shape[0], device=activation.device)
    return rows, slice(None), positions[:, 0], positions[:, 1]


class Attributor:
    """Computes ``[S, K]`` attributions of samples of one layer of one model.

    Args:
        model: the model, in eval mode (batch norm must use running statistics, so that
            samples of a batch do not interact).
        layer: the layer the samples come from.
        smooth_maxpool: back-propagate max-pools through the article's smooth relaxation.
        method: one of :data:`METHODS`.
        measure: one of :data:`MEASURES` (``readout`` runs forward only: ``method`` and
            ``smooth_maxpool`` do not apply to it).

    Attributes:
        method_used: ``jvp`` or ``double-vjp`` once a batch has been attributed (else None).
    """

    def __init__(
        self,
        model: AtlasModel,
        layer: str,
        *,
        smooth_maxpool: bool = True,
        method: str = "auto",
        measure: str = "gradient",
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"attribution method must be one of {METHODS}, got {method!r}")
        if measure not in MEASURES:
            raise ValueError(f"attribution measure must be one of {MEASURES}, got {measure!r}")
        model.layer(layer)  # validates the name
        self.model = model
        self.layer = layer
        self.smooth_maxpool = smooth_maxpool
        self.method = method
        self.measure = measure
        self.method_used: str | None = None

    def _relaxed(self) -> contextlib.AbstractContextManager[None]:
        from generator.models.base import relaxed_max_pool

        return relaxed_max_pool(self.model) if self.smooth_maxpool else contextlib.nullcontext()

    def __call__(
        self, activation: Tensor, positions: Tensor, images: Tensor | None = None
    ) -> Tensor:
        """Attributions ``[S, K] float32`` of the samples at ``positions`` of ``activation``.

        Args:
            activation: ``[S, C, h, w]`` the layer's (post-ReLU) activation, one map per sample
                (repeat an image's map for each of its positions).
            positions: ``[S, 2]`` int64 ``(y, x)``.
            images: ``[S, 3, H, W]`` in [0, 1], only for models whose ``logits_from`` needs them.
        """
        activation = activation.detach().float()
        if self.measure == "readout":
            return readout(self.model, self.layer, activation, positions, images)
        tangent = position_tangent(activation, positions)
        if self.method == "double-vjp" or self.method_used == "double-vjp":
            self.method_used = "double-vjp"
            return self._double_vjp(activation, tangent, images)
        try:
            result = self._jvp(activation, tangent, images)
        except (RuntimeError, NotImplementedError) as err:
            if self.method == "jvp":
                raise
            log.info("forward-mode attribution failed (%s); using the double-vjp trick", err)
            self.method_used = "double-vjp"
            return self._double_vjp(activation, tangent, images)
        self.method_used = "jvp"
        return result

    def _jvp(self, activation: Tensor, tangent: Tensor, images: Tensor | None) -> Tensor:
        import torch
        import torch.autograd.forward_ad as fwAD

        from generator.atlas.tangents import input_tangents_only

        with torch.no_grad(), self._relaxed(), input_tangents_only(), fwAD.dual_level():
            dual = fwAD.make_dual(activation, tangent)
            logits = self.model.logits_from(self.layer, dual, images)
            directional = fwAD.unpack_dual(logits).tangent
        if directional is None:  # the logits do not depend on the layer
            directional = torch.zeros_like(logits)
        return directional.float()

    def _double_vjp(self, activation: Tensor, tangent: Tensor, images: Tensor | None) -> Tensor:
        import torch

        with torch.enable_grad(), self._relaxed():
            a = activation.clone().requires_grad_(True)
            logits = self.model.logits_from(self.layer, a, images)
            u = torch.zeros_like(logits, requires_grad=True)
            (vjp_u,) = torch.autograd.grad(logits, a, grad_outputs=u, create_graph=True)
            (directional,) = torch.autograd.grad(vjp_u, u, grad_outputs=tangent)
        return directional.detach().float()


def readout(
    model: AtlasModel,
    layer: str,
    activation: Tensor,
    positions: Tensor,
    images: Tensor | None = None,
) -> Tensor:
    """The readout ``[S, K] float32`` of each sample: ``logits(F_h) - logits(F_0)``.

    ``F_h`` is ``activation``'s map with every position set to the sample's vector
    ``h = activation[s, :, y_s, x_s]``, ``F_0`` the map of zeros (see the module docstring).
    Same arguments as :meth:`Attributor.__call__`; ``images`` only for models whose
    ``logits_from`` needs them.
    """
    import torch

    h = activation[_sample_index(activation, positions)]  # [S, C]
    filled = h[:, :, None, None].expand_as(activation).contiguous()
    with torch.no_grad():
        logits = model.logits_from(layer, filled, images)
        blank = model.logits_from(layer, torch.zeros_like(activation), images)
    return (logits - blank).float()


def brute_force_attributions(
    model: AtlasModel,
    layer: str,
    activation: Tensor,
    positions: Tensor,
    images: Tensor | None = None,
    *,
    smooth_maxpool: bool = True,
) -> Tensor:
    """The slow reference: one reverse-mode pass per class (for tests and checks only).

    Same arguments and result as :meth:`Attributor.__call__`.
    """
    import torch

    from generator.models.base import relaxed_max_pool

    relax = relaxed_max_pool(model) if smooth_maxpool else contextlib.nullcontext()
    with torch.enable_grad(), relax:
        a = activation.detach().float().clone().requires_grad_(True)
        logits = model.logits_from(layer, a, images)
        rows = torch.arange(a.shape[0])
        ys, xs = positions[:, 0], positions[:, 1]
        h = a.detach()[rows, :, ys, xs]  # [S, C]
        columns = []
        for c in range(logits.shape[1]):
            (grad,) = torch.autograd.grad(logits[:, c].sum(), a, retain_graph=True)
            columns.append((grad[rows, :, ys, xs] * h).sum(dim=1))
    return torch.stack(columns, dim=1)

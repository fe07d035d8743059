"""Any classifier as an :class:`AtlasModel`, through forward hooks: user models, torchvision.

A user's own model enters through an entry point ``"package.module:function"`` (named in
``atlas.toml``, ``[models.<name>] entry = ...``, with optional ``options = {...}`` passed as
keyword arguments) that returns a :class:`UserModel`::

    # mypackage/atlas_models.py
    from generator.models.hooked import UserModel

    def my_resnet(checkpoint: str = "resnet.pt") -> UserModel:
        net = build_my_resnet()
        net.load_state_dict(torch.load(checkpoint, weights_only=True))
        return UserModel(
            module=net,                                  # net(x) -> logits [B, K]
            layers={"block3": "layer3", "block4": "layer4"},  # name -> module path
            preprocess=lambda images: (images - 0.5) / 0.25,  # [0, 1] -> net's input
            labels=[line.strip() for line in open("classes.txt")],
            input_size=224,
            weights_file=checkpoint,                     # for cache keys (optional)
        )

Each layer is the output of the named submodule (``[B, C, h, w]``; name a module that runs
once per forward, e.g. a ResNet stage, not a ReLU reused inside blocks). ``forward_to``
stops the forward as soon as every requested layer has been seen (a hook raises a private
exception), and ``logits_from`` re-runs the network from the images with a hook that
substitutes the given activation. Hooks are always removed, also when the forward fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from generator.errors import AtlasError, unknown_name
from generator.models.base import AtlasModel, LayerInfo


@dataclass
class UserModel:
    """What a user's entry point returns.

    Attributes:
        module: the classifier; ``module(preprocess(images))`` gives logits ``[B, K]``.
        layers: layer name -> dotted submodule path (``{"layer3": "layer3"}``), or a list of
            paths used as names.
        preprocess: images ``[B, 3, H, W]`` in [0, 1] -> the module's input.
        labels: class name per logit.
        input_size: the square input side the model expects by default.
        weights_file: the checkpoint the weights came from; its digest keys the caches
            (without one, the digest of the state_dict's bytes is used).
    """

    module: nn.Module
    layers: Mapping[str, str] | Sequence[str]
    preprocess: Callable[[Tensor], Tensor]
    labels: Sequence[str]
    input_size: int = 224
    weights_file: str | Path | None = None


class _StopForward(Exception):
    """Raised by a capture hook once every requested layer has been seen."""


def state_dict_digest(module: nn.Module, length: int = 16) -> str:
    """sha256 of a module's tensors (names, dtypes, shapes and bytes); "meta" on meta tensors."""
    h = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        if tensor.is_meta:
            return "meta"
        h.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:length]


class HookedModel(AtlasModel):
    """An :class:`AtlasModel` around any ``nn.Module`` classifier (see the module docstring).

    Attributes:
        net: the wrapped classifier.
        layer_paths: layer name -> submodule path.
    """

    def __init__(
        self,
        module: nn.Module,
        layers: Mapping[str, str] | Sequence[str],
        preprocess: Callable[[Tensor], Tensor],
        labels: Sequence[str],
        *,
        name: str,
        input_size: int = 224,
        weights_digest: str | None = None,
    ):
        super().__init__()
        self.net = module
        self.name = name
        self.input_size = input_size
        self.labels = tuple(labels)
        self._preprocess = preprocess  # an nn.Module here is registered, so .to() moves it
        paths = dict(layers) if isinstance(layers, Mapping) else {p: p for p in layers}
        if "logits" in paths:
            raise AtlasError(
                f"model {name!r}: 'logits' is the model's output, not a layer to map",
                expected="other layer names",
                fix="remove 'logits' from `layers`",
                exit_code=2,
            )
        modules = dict(module.named_modules())
        for layer, path in paths.items():
            if path not in modules or path == "":
                raise unknown_name(
                    "module path",
                    path,
                    [p for p in modules if p],
                    where=f"model {name!r}, layer {layer!r}",
                )
        self.layer_paths = paths
        self._modules_by_layer = {layer: modules[path] for layer, path in paths.items()}
        self.layer_infos = self._probe()
        self.weights_digest = weights_digest or state_dict_digest(module)

    # -- facts ----------------------------------------------------------------------------

    def _probe(self) -> tuple[LayerInfo, ...]:
        """Layer shapes at ``input_size`` from one forward of a zero image, in forward order."""
        param = next(self.net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(1, 3, self.input_size, self.input_size, device=device)
        seen: dict[str, Tensor] = {}
        with torch.no_grad(), self._capturing(list(self.layer_paths), seen, stop=False):
            logits = self.net(self.preprocess(x))
        infos = []
        for layer in seen:  # insertion order = forward order
            out = seen[layer]
            size = int(out.shape[-1]) if out.ndim == 4 else 1
            infos.append(LayerInfo(layer, int(out.shape[1]), size))
        missing = [layer for layer in self.layer_paths if layer not in seen]
        if missing or not isinstance(logits, Tensor) or logits.ndim != 2:
            raise AtlasError(
                f"model {self.name!r} does not fit the atlas model contract",
                expected="module(x) -> logits [B, K]; every layer's module runs in the forward"
                " and returns a tensor",
                got=f"layers never run: {missing}" if missing else f"output {type(logits)}",
                exit_code=2,
            )
        if logits.shape[1] != len(self.labels):
            raise AtlasError(
                f"model {self.name!r} has {logits.shape[1]} logits but {len(self.labels)} labels",
                expected=f"{logits.shape[1]} class names",
                exit_code=2,
            )
        infos.append(LayerInfo("logits", int(logits.shape[1]), 1))
        return tuple(infos)

    # -- computation ----------------------------------------------------------------------

    def preprocess(self, images: Tensor) -> Tensor:
        return self._preprocess(images)

    @contextmanager
    def _capturing(
        self, layers: Sequence[str], seen: dict[str, Tensor], *, stop: bool
    ) -> Iterator[None]:
        """Hooks that store each layer's output in ``seen`` (and stop once all are seen)."""
        wanted = set(layers)

        def make_hook(layer: str) -> Callable[..., None]:
            def hook(module: nn.Module, inputs: Any, output: Any) -> None:
                if not isinstance(output, Tensor):
                    raise AtlasError(
                        f"layer {layer!r} ({self.layer_paths[layer]}) of model {self.name!r}"
                        f" returns a {type(output).__name__}, not a tensor",
                        fix="map the layer to a submodule whose output is a tensor",
                        exit_code=2,
                    )
                seen.setdefault(layer, output)
                if stop and wanted <= seen.keys():
                    raise _StopForward

            return hook

        handles = [
            self._modules_by_layer[layer].register_forward_hook(make_hook(layer))
            for layer in wanted
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def forward_to(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """See :meth:`AtlasModel.forward_to`; without ``logits`` the forward stops early."""
        for layer in layers:
            self.layer(layer)
        inner = [layer for layer in dict.fromkeys(layers) if layer != "logits"]
        seen: dict[str, Tensor] = {}
        x = self.preprocess(images)
        if "logits" in layers:
            with self._capturing(inner, seen, stop=False):
                seen["logits"] = self.net(x)
        elif inner:
            try:
                with self._capturing(inner, seen, stop=True):
                    self.net(x)
            except _StopForward:
                pass
        return {layer: seen[layer] for layer in layers}

    def logits_from(self, layer: str, activation: Tensor, images: Tensor | None = None) -> Tensor:
        """Logits ``[B, K]`` with ``layer``'s output replaced by ``activation``.

        Needs ``images`` (the same batch the activation came from): the layers before
        ``layer`` run again and their result is discarded.
        """
        self.layer(layer)
        if layer == "logits":
            return activation
        if images is None:
            raise ValueError(f"{self.name}: hook-based models need `images` for logits_from")

        def substitute(module: nn.Module, inputs: Any, output: Any) -> Tensor:
            if not isinstance(output, Tensor) or output.shape != activation.shape:
                got = tuple(output.shape) if isinstance(output, Tensor) else type(output)
                raise ValueError(
                    f"{self.name}: activation {tuple(activation.shape)} does not match"
                    f" layer {layer!r}'s output {got}"
                )
            return activation

        handle = self._modules_by_layer[layer].register_forward_hook(substitute)
        try:
            return self.net(self.preprocess(images))
        finally:
            handle.remove()

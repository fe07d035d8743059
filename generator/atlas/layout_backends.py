"""Which program computes a UMAP layout: umap-learn, landmarks, RAPIDS cuML or torchdr.

``[atlas.<id>.layout] backend`` (default ``"auto"``) and ``landmarks`` ask; :func:`choose_backend`
decides, a pure function of (request, device type, installed packages, number of vectors):

* ``umap-learn``: the full UMAP of :mod:`generator.atlas.layout` (every result made before
  back ends existed; their cache keys are unchanged).
* ``landmarks``: :mod:`generator.atlas.landmarks`, UMAP of ``landmarks`` seeded vectors and
  the others placed from their nearest landmarks: a million vectors in minutes on a CPU.
* ``cuml``: ``cuml.manifold.UMAP`` (RAPIDS, CUDA only; ``pip install 'atlas[cuml]'``).
* ``torchdr``: ``torchdr.UMAP`` (PyTorch, CPU or CUDA; ``pip install 'atlas[gpu-layout]'``), on
  the exact neighbours of :func:`generator.atlas.landmarks.nearest`.
* ``auto``: on a CUDA device cuML, else torchdr, when installed; otherwise umap-learn up to
  :data:`AUTO_LANDMARKS_ABOVE` vectors and landmarks above.

The decision is made before anything is computed, from the layer's sample count (``samples x
positions``; a class atlas lays out a subset of those), so every cache key is known up front:
the layout's key gains :meth:`LayoutBackend.key_parts` only when the back end is not
umap-learn. Every back end gets the article's settings (n_neighbors, min_dist, metric) and the
atlas's seed; the packages are imported only when their back end runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import random
import time
import types
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from generator.atlas.layout import EXACT_METRICS
from generator.errors import AtlasError, SetupError

if TYPE_CHECKING:
    from generator.atlas.layout import LayoutParams

log = logging.getLogger(__name__)

#: Values of ``backend``.
BACKENDS = ("auto", "umap-learn", "landmarks", "cuml", "torchdr")

#: GPU back ends in ``auto``'s order of preference, each with its module and pip extra.
GPU_BACKENDS = ("cuml", "torchdr")
EXTRAS = {"cuml": "cuml", "torchdr": "gpu-layout"}

#: ``auto`` on a CPU: umap-learn up to this many vectors (the article's 100,000 samples, which
#: umap-learn laid out in 6.8 min on the 2-core development machine), landmarks above, where
#: umap-learn's time keeps growing and the landmarks' trustworthiness measured within 0.001 of
#: it at 100,000 in 1.7 min (bench/RESULTS.md, "Layout at scale").
AUTO_LANDMARKS_ABOVE = 100_000

#: Default and fewest landmarks. 20,000: umap-learn runs 200 epochs above 10,000 points (500 up
#: to it), so 20,000 landmarks laid out 100,000 vectors faster than 10,000 did, as well; the
#: placement's cost grows with it (bench/RESULTS.md, "Layout at scale").
DEFAULT_LANDMARKS = 20_000
MIN_LANDMARKS = 100


@dataclass(frozen=True)
class BackendSettings:
    """What ``[atlas.<id>.layout]`` asks: ``backend`` (one of :data:`BACKENDS`) and
    ``landmarks`` (vectors laid out by UMAP when the landmarks back end runs)."""

    backend: str = "auto"
    landmarks: int = DEFAULT_LANDMARKS

    def is_default(self) -> bool:
        return self == BackendSettings()


@dataclass(frozen=True)
class LayoutBackend:
    """The back end that runs: ``name`` (not ``auto``), the device type it runs on (``cpu`` |
    ``cuda``) and, for ``landmarks``, how many."""

    name: str = "umap-learn"
    device: str = "cpu"
    landmarks: int = DEFAULT_LANDMARKS

    def key_parts(self) -> dict[str, Any]:
        """What the layout's cache key adds: nothing for umap-learn (keys as before)."""
        if self.name == "umap-learn":
            return {}
        parts: dict[str, Any] = {"name": self.name, "device": self.device}
        if self.name == "landmarks":
            from generator.atlas.landmarks import LANDMARKS_VERSION, PLACE_NEIGHBORS

            parts.update(
                landmarks=self.landmarks, neighbors=PLACE_NEIGHBORS, version=LANDMARKS_VERSION
            )
        return {"backend": parts}

    def facts(self) -> dict[str, Any]:
        """What the layout artifact's ``params`` add: nothing for umap-learn."""
        if self.name == "umap-learn":
            return {}
        if self.name == "landmarks":
            return {"backend": self.name, "landmarks": self.landmarks}
        return {"backend": self.name}

    @property
    def streams(self) -> bool:
        """Whether :meth:`fit` takes every vector, duplicates included, in any float precision,
        and reads them block by block (a memory map is never copied whole): the landmarks."""
        return self.name == "landmarks"

    def fit(
        self, vectors: np.ndarray, params: LayoutParams, n_components: int, seed: int
    ) -> np.ndarray:
        """:func:`fit_backend` with this back end (so :mod:`generator.atlas.layout` runs it
        without importing this module: no import cycle)."""
        return fit_backend(vectors, params, n_components, seed, self)


UMAP_LEARN = LayoutBackend()


def installed_backends() -> frozenset[str]:
    """The GPU back ends whose package is importable here (found, not imported)."""
    return frozenset(name for name in GPU_BACKENDS if importlib.util.find_spec(name) is not None)


def _missing(name: str) -> SetupError:
    return SetupError(
        f"the {name} layout back end needs the {name!r} package, which is not installed",
        where="layout.backend",
        fix=f"pip install 'atlas[{EXTRAS[name]}]' (see pyproject.toml), or backend = \"auto\"",
    )


def choose_backend(
    requested: str,
    *,
    device: str,
    installed: Collection[str],
    n: int,
    metric: str = "cosine",
    threshold: int = AUTO_LANDMARKS_ABOVE,
) -> str:
    """The back end that runs for ``requested`` (one of :data:`BACKENDS`) on ``device`` (a
    device type: ``cpu`` | ``cuda``) with the GPU back ends ``installed`` for ``n`` vectors
    compared by ``metric`` (``auto`` keeps umap-learn for a metric the landmarks lack).

    Raises:
        AtlasError: an unknown name; ``cuml`` asked for off CUDA; ``landmarks`` asked for with
            a metric other than cosine or euclidean.
        SetupError: ``cuml`` or ``torchdr`` asked for and not installed.
    """
    if requested not in BACKENDS:
        raise AtlasError(
            f"unknown layout back end {requested!r}",
            where="layout.backend",
            expected=" | ".join(f'"{b}"' for b in BACKENDS),
            got=requested,
        )
    if requested == "auto":
        if device == "cuda":
            for name in GPU_BACKENDS:
                if name in installed:
                    return name
        return "landmarks" if n > threshold and metric in EXACT_METRICS else "umap-learn"
    if requested == "landmarks" and metric not in EXACT_METRICS:
        raise AtlasError(
            f"the landmarks layout back end has no metric {metric!r}",
            where="layout.metric",
            expected=" | ".join(EXACT_METRICS),
            got=metric,
            fix='use one of those metrics, or backend = "umap-learn"',
        )
    if requested in GPU_BACKENDS and requested not in installed:
        raise _missing(requested)
    if requested == "cuml" and device != "cuda":
        raise AtlasError(
            "the cuml layout back end runs on a CUDA device only",
            where="layout.backend",
            expected="--device cuda (or [compute] device)",
            got=f"device {device}",
            fix='compute on a GPU, or use backend = "auto", "landmarks" or "torchdr"',
        )
    return requested


def resolve_backend(
    settings: BackendSettings,
    *,
    device: str,
    n: int,
    method: str = "umap",
    metric: str = "cosine",
    installed: Collection[str] | None = None,
) -> LayoutBackend:
    """The :class:`LayoutBackend` of ``settings`` (umap-learn whenever ``method`` is not UMAP:
    t-SNE has one back end)."""
    if method != "umap":
        return UMAP_LEARN
    found = installed_backends() if installed is None else installed
    name = choose_backend(settings.backend, device=device, installed=found, n=n, metric=metric)
    if name == "umap-learn":
        return UMAP_LEARN
    return LayoutBackend(name=name, device=device, landmarks=settings.landmarks)


def fit_backend(
    vectors: np.ndarray,
    params: LayoutParams,
    n_components: int,
    seed: int,
    backend: LayoutBackend,
) -> np.ndarray:
    """The raw UMAP embedding ``[N, n_components] float64`` of ``vectors [N, C]`` computed by
    ``backend`` (not umap-learn: :func:`generator.atlas.layout._fit` runs that): distinct
    float32 vectors, except for a back end that :attr:`~LayoutBackend.streams`."""
    if backend.name == "landmarks":
        from generator.atlas.landmarks import landmark_umap

        return landmark_umap(
            vectors, params, n_components=n_components, seed=seed, landmarks=backend.landmarks
        )
    if backend.name == "cuml":
        return _fit_cuml(vectors, params, n_components, seed)
    if backend.name == "torchdr":
        return _fit_torchdr(vectors, params, n_components, seed, backend.device)
    raise ValueError(f"fit_backend: no back end {backend.name!r}")


# -- cuML ------------------------------------------------------------------------------------


def cuml_arguments(params: LayoutParams, n_components: int, seed: int) -> dict[str, Any]:
    """Keyword arguments of ``cuml.manifold.UMAP``: the article's settings, seeded (cuML then
    runs its deterministic, slower optimization), spectral initialization like umap-learn,
    numpy output."""
    return {
        "n_components": n_components,
        "n_neighbors": params.n_neighbors,
        "min_dist": params.min_dist,
        "metric": params.metric,
        "init": "spectral",
        "random_state": seed,
        "output_type": "numpy",
    }


def _fit_cuml(vectors: np.ndarray, params: LayoutParams, n_components: int, seed: int) -> Any:
    try:
        from cuml.manifold import UMAP
    except ImportError as err:
        raise _missing("cuml") from err
    start = time.monotonic()
    model = UMAP(**cuml_arguments(params, n_components, seed))
    embedding = model.fit_transform(np.ascontiguousarray(vectors, dtype=np.float32))
    log.info("cuml: UMAP of %d vectors in %.1fs", len(vectors), time.monotonic() - start)
    return np.asarray(embedding, dtype=np.float64)


# -- torchdr ---------------------------------------------------------------------------------


def torchdr_arguments(
    params: LayoutParams, n_components: int, seed: int, device: str
) -> dict[str, Any]:
    """Keyword arguments of ``torchdr.UMAP``: the article's settings, seeded, on ``device``.
    Its own neighbour search is replaced by ours (:func:`_fit_torchdr`: ``params.metric``,
    distances as umap-learn's), so its ``metric`` is unused and ``backend=None``."""
    return {
        "n_components": n_components,
        "n_neighbors": params.n_neighbors,
        "min_dist": params.min_dist,
        "random_state": seed,
        "device": device,
        "backend": None,
        "process_duplicates": False,  # the vectors are distinct (layout.embed)
        "verbose": False,
    }


@contextlib.contextmanager
def _kept_random_state() -> Iterator[None]:
    """torchdr seeds Python's, numpy's and torch's global generators and cuDNN's flags
    (``seed_everything``); put them back afterwards, so the seed stays this call's."""
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    hash_seed = os.environ.get("PYTHONHASHSEED")
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if hash_seed is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = hash_seed
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def _fit_torchdr(
    vectors: np.ndarray, params: LayoutParams, n_components: int, seed: int, device: str
) -> np.ndarray:
    """torchdr's UMAP on the exact neighbours of :func:`generator.atlas.landmarks.nearest`
    (computed on ``device``): torchdr's own search without faiss builds the whole N x N
    distance matrix. Its affinity asks for ``n_neighbors - 1`` neighbours without self."""
    try:
        with warnings.catch_warnings():
            # torchdr 0.5 warns at import when faiss is missing: its search is not used here
            warnings.filterwarnings("ignore", message=r"\s*=+\s*FAISS", category=ImportWarning)
            import torchdr
    except ImportError as err:
        raise _missing("torchdr") from err
    import torch

    from generator.atlas.landmarks import nearest

    arguments = torchdr_arguments(params, n_components, seed, device)
    k = max(2, min(params.n_neighbors, vectors.shape[0] - 1))
    arguments["n_neighbors"] = k
    start = time.monotonic()
    indices, distances = nearest(vectors, vectors, k, params.metric, same=True, device=device)
    log.info("torchdr: neighbours of %d vectors in %.1fs", len(vectors), time.monotonic() - start)
    start = time.monotonic()
    knn = (
        torch.from_numpy(distances[:, 1:]).to(device),
        torch.from_numpy(indices[:, 1:]).to(device),
    )

    def neighbours(self: Any, x: Any, k: int | None = None, return_indices: bool = False) -> Any:
        assert k is not None and k <= knn[0].shape[1], (k, knn[0].shape)
        found = (knn[0][:, :k].contiguous(), knn[1][:, :k].contiguous())
        return found if return_indices else found[0]

    with _kept_random_state():
        model = torchdr.UMAP(**arguments)
        # instance override of torchdr 0.5's UMAPAffinity._distance_matrix
        model.affinity_in._distance_matrix = types.MethodType(neighbours, model.affinity_in)
        x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
        embedding = model.fit_transform(x)
    if isinstance(embedding, torch.Tensor):
        embedding = embedding.detach().cpu().numpy()
    log.info("torchdr: UMAP of %d vectors in %.1fs", len(vectors), time.monotonic() - start)
    return np.asarray(embedding, dtype=np.float64)

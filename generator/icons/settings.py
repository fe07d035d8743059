"""How atlas icons are rendered: presets, the ``[atlas.<id>.render]`` keys, their checks.

Presets (``preset = "..."``), every value overridable in the same table:

* ``"article"`` (default): the article's builds, METHOD.md 5: 80 px icons, 1024 Adam steps,
  the best of 4 tries per icon;
* ``"fast"``: the reference notebooks' 512 steps and one try (8x fewer steps than "article");
* ``"tiny"``: 32 px, 16 steps, one try, for tests and smoke runs;
* ``"demo"``: the demo publication's CPU budget (48 px, 64 steps of Adam at 0.15, one try, no
  border penalty): on the demo model 0.77 fidelity at mixed4c where the article's learning rate
  and border gave 0.65 and grey icons in the same time (bench/RESULTS.md, "Demo build").

Keys (:data:`RENDER_KEYS`): ``icon_size``, ``steps``, ``tries``, ``batch_size`` (default: the
memory heuristic of :mod:`generator.icons.batching`), ``lr``, ``cossim_pow``, ``border``,
``calibrate`` (see :mod:`generator.icons.objective`), ``seed`` (default: the atlas's),
``autocast`` (``"off" | "bf16" | "fp16"``), ``channels_last`` (``true | false | "auto"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: Presets (``[atlas.<id>.render] preset``); every key can be overridden in that table.
#: "article": the article's builds (METHOD.md 5: 80 px, 1024 steps, best of 4 tries);
#: "fast": the reference notebooks' 512 steps, one try (about 8x cheaper);
#: "tiny": for tests and smoke runs (32 px, 16 steps);
#: "demo": the demo publication on a CPU (module docstring).
PRESETS: dict[str, dict[str, Any]] = {
    "article": {"icon_size": 80, "steps": 1024, "tries": 4},
    "fast": {"icon_size": 80, "steps": 512, "tries": 1},
    "tiny": {"icon_size": 32, "steps": 16, "tries": 1},
    "demo": {"icon_size": 48, "steps": 64, "tries": 1, "lr": 0.15, "border": False},
}
DEFAULT_PRESET = "article"

#: The recipe's cosine exponent p (METHOD.md 5: 2 in the recipe, 4 in the notebooks) and
#: Adam's learning rate (the same as generator.optvis.render.LEARNING_RATE).
DEFAULT_COSSIM_POW = 2.0
DEFAULT_LR = 0.05

#: Keys of ``[atlas.<id>.render]`` read here (compose reads its own, see compose.py).
RENDER_KEYS = (
    "preset",
    "icon_size",
    "steps",
    "tries",
    "batch_size",
    "lr",
    "cossim_pow",
    "border",
    "calibrate",
    "seed",
    "autocast",
    "channels_last",
)
AUTOCAST = {"off": None, "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class RenderSettings:
    """How icons are rendered (a preset with the spec's overrides).

    Attributes:
        preset: the preset the values started from.
        icon_size: S, icon side in px; the network sees this size (no upsampling).
        steps, tries: Adam steps per try; tries per icon (the best by the direction term).
        lr: Adam's learning rate; cossim_pow: p of the atlas objective.
        border: add the recipe's border penalty.
        calibrate: weigh each direction term to :data:`CALIBRATED_VALUE` at its target.
        seed: the render's seed (icons also depend on their cell).
        autocast: ``"off"``, ``"bf16"`` or ``"fp16"``: mixed precision of the forward.
        channels_last: None (choose for the device), True or False.
        batch_size: icons per batch, None for the memory heuristic.
    """

    preset: str = DEFAULT_PRESET
    icon_size: int = 80
    steps: int = 1024
    tries: int = 4
    lr: float = DEFAULT_LR
    cossim_pow: float = DEFAULT_COSSIM_POW
    border: bool = True
    calibrate: bool = True
    seed: int = 0
    autocast: str = "off"
    channels_last: bool | None = None
    batch_size: int | None = None

    def key_parts(self) -> dict[str, Any]:
        """What changes the icons (batch size, channels_last and device only change float
        rounding, so a render may resume with other ones)."""
        parts = asdict(self)
        for name in ("preset", "channels_last", "batch_size"):
            parts.pop(name)
        return parts


def render_settings(
    table: Mapping[str, Any], *, seed: int, problems: list[tuple[str, Any, str]]
) -> RenderSettings:
    """The :class:`RenderSettings` of a ``render`` table (keys :data:`RENDER_KEYS`; others are
    left to the caller); each bad value is appended to ``problems`` as ``(key, value,
    expected)`` and replaced by its default."""
    preset = table.get("preset", DEFAULT_PRESET)
    if preset not in PRESETS:
        problems.append(("render.preset", preset, " | ".join(f'"{p}"' for p in PRESETS)))
        preset = DEFAULT_PRESET
    values: dict[str, Any] = {"preset": preset, "seed": seed, **PRESETS[preset]}
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "icon_size": (lambda v: _is_int(v) and 8 <= v <= 1024, "an integer in [8, 1024]"),
        "steps": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "tries": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        "lr": (lambda v: _is_number(v) and 0 < v <= 10, "a number in (0, 10]"),
        "cossim_pow": (lambda v: _is_number(v) and 0 <= v <= 16, "a number in [0, 16]"),
        "border": (lambda v: isinstance(v, bool), "true or false"),
        "calibrate": (lambda v: isinstance(v, bool), "true or false"),
        "autocast": (lambda v: v in AUTOCAST, " | ".join(f'"{a}"' for a in AUTOCAST)),
        "channels_last": (lambda v: isinstance(v, bool) or v == "auto", 'true, false or "auto"'),
    }
    for key, (ok, expected) in checks.items():
        if key not in table:
            continue
        value = table[key]
        if not ok(value):
            problems.append((f"render.{key}", value, expected))
            continue
        values[key] = float(value) if key in ("lr", "cossim_pow") else value
    if values.get("channels_last") == "auto":
        values["channels_last"] = None
    return RenderSettings(**values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

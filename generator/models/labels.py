"""Class names of the models: Lucid's InceptionV1 label file, plain label files.

``labels/inceptionv1_lucid_labels.txt`` (package data, from ``../shared/data``) has one line
per class of Lucid's InceptionV1: WordNet id, the model's output index (1..1000) and the
name, e.g. ``n02119789 1 kit fox``. The model has 1008 logits: index 0 is "dummy" and
1001..1007 are unused.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from generator.errors import SetupError

#: Lucid's InceptionV1 logit count: 1 dummy + 1000 classes + 7 unused.
LUCID_NUM_LOGITS = 1008

LUCID_LABEL_FILE = "inceptionv1_lucid_labels.txt"


@cache
def lucid_classes() -> tuple[tuple[str, str], ...]:
    """``(wordnet id, name)`` of each of Lucid's 1008 logits (``("", "dummy")`` at 0,
    ``("", "unused 1001")``... at 1001..1007)."""
    text = resources.files("generator.models").joinpath("labels", LUCID_LABEL_FILE).read_text()
    entries: dict[int, tuple[str, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=2)
        if len(parts) != 3 or not parts[1].isdigit():
            raise SetupError(
                "malformed line in the packaged label file",
                where=f"{LUCID_LABEL_FILE}:{number}",
                expected="'<wordnet id> <index> <name>'",
                got=line,
                fix="reinstall the package",
            )
        entries[int(parts[1])] = (parts[0], parts[2].strip())
    if sorted(entries) != list(range(1, 1001)):
        raise SetupError(
            "the packaged label file does not cover indices 1..1000",
            where=LUCID_LABEL_FILE,
            fix="reinstall the package",
        )
    out = [("", "dummy")]
    out += [entries[i] for i in range(1, 1001)]
    out += [("", f"unused {i}") for i in range(1001, LUCID_NUM_LOGITS)]
    return tuple(out)


def lucid_labels() -> tuple[str, ...]:
    """The 1008 class names of Lucid's InceptionV1, by logit index (1 = "kit fox")."""
    return tuple(name for _, name in lucid_classes())


def read_label_file(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file, one per line in logit order (blank lines skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SetupError(
            f"cannot read the label file: {err.strerror}",
            where=str(path),
            expected="a UTF-8 text file with one class name per line",
            fix="fix the `labels` path in atlas.toml",
        ) from err
    return tuple(line.strip() for line in text.splitlines() if line.strip())

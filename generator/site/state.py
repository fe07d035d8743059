"""What the last successful build produced, so the next one redoes only what changed.

``<cache>/site/state.json`` records, for the output folder it describes (and the output
folder's guard reads as the proof that a build wrote it, :func:`built_output`):

- per page: the digest of everything its HTML depends on (its source, its publication's
  bibliography, its navigation, the atlases' facts, templates, config and the site code), the
  digest of the HTML written, and its ids and links (so the link check needs no re-render);
- per atlas: the digest of its bundle and tile settings.

A page or atlas is reused from the previous ``site/`` only when its key is unchanged and the
previous output is still there, byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.cache import atomic_write_json

#: Bump when the state's layout changes (older states are ignored).
STATE_VERSION = 1

#: The state's file in ``<cache>/site/``.
STATE_FILE = "state.json"


def built_output(path: Path) -> str | None:
    """The output folder the state at ``path`` says a build wrote (its ``output``, whatever
    the state's version), or None: no state, or an unreadable one. The output-folder guard
    replaces only that folder (:func:`generator.site.output.check_output_folder`)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    output = doc.get("output") if isinstance(doc, dict) else None
    return output if isinstance(output, str) else None


@dataclass
class PageState:
    """One page of the previous build."""

    key: str
    html_digest: str
    ids: list[str]
    refs: list[tuple[str, int | None]]
    source: str


@dataclass
class BuildState:
    """The previous build of one output folder (empty when there was none)."""

    path: Path
    output: str
    pages: dict[str, PageState] = field(default_factory=dict)
    atlases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, output: Path) -> BuildState:
        """The state saved at ``path`` if it describes ``output`` and it still exists."""
        empty = cls(path, str(output))
        if not output.is_dir():
            return empty
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return empty
        if doc.get("version") != STATE_VERSION or doc.get("output") != str(output):
            return empty
        pages = {
            url: PageState(
                key=p["key"],
                html_digest=p["html_digest"],
                ids=list(p["ids"]),
                refs=[(str(r[0]), r[1]) for r in p["refs"]],
                source=p["source"],
            )
            for url, p in doc.get("pages", {}).items()
        }
        return cls(path, str(output), pages, dict(doc.get("atlases", {})))

    def save(self) -> None:
        atomic_write_json(
            self.path,
            {
                "version": STATE_VERSION,
                "output": self.output,
                "pages": {
                    url: {
                        "key": p.key,
                        "html_digest": p.html_digest,
                        "ids": p.ids,
                        "refs": p.refs,
                        "source": p.source,
                    }
                    for url, p in sorted(self.pages.items())
                },
                "atlases": dict(sorted(self.atlases.items())),
            },
            indent=None,
        )

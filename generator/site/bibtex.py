"""A small BibTeX reader: entries, ``@string`` macros, ``#`` concatenation, common LaTeX.

Enough for the bibliographies of articles: ``@article{key, author = {A and B}, title = "..."}``
with brace or quote delimited values, numbers, month macros, ``@string``, ``@comment`` and
``@preamble``. LaTeX accents (``{\\"o}``, ``\\'e``), escaped characters (``\\&``), dashes and
ties become Unicode; other commands keep their argument (``\\emph{x}`` -> ``x``).

:func:`format_entry` renders an entry as escaped HTML for the numbered reference list.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup, escape

from generator.errors import ContentError
from generator.textfiles import MAX_BIB_BYTES, read_text

#: Month macros BibTeX predefines.
MONTHS = {
    m: m.capitalize()
    for m in ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
}

#: LaTeX accent commands -> Unicode combining marks.
_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "c": "\u0327",
    "v": "\u030c",
    "u": "\u0306",
    "H": "\u030b",
    "k": "\u0328",
}

#: Letter commands -> characters.
_LETTERS = {"ss": "ß", "o": "ø", "O": "Ø", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "l": "ł"}


@dataclass(frozen=True)
class Entry:
    """One bibliography entry: its type (``article``), key, fields (cleaned text), line."""

    type: str
    key: str
    fields: dict[str, str]
    source: str
    line: int


class _Reader:
    """A cursor over BibTeX text that reports errors with file and line."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0

    def line(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def error(self, what: str, expected: str, pos: int | None = None) -> ContentError:
        return ContentError(
            what,
            where=f"{self.source}:{self.line(pos)}",
            expected=expected,
            fix='correct the entry (values are {braced}, "quoted", numbers or @string names)',
        )

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, chars: str) -> str:
        char = self.peek()
        if not char or char not in chars:
            raise self.error(f"unexpected {char or 'end of file'!r}", " or ".join(chars))
        self.pos += 1
        return char

    def name(self) -> str:
        self.skip_space()
        match = re.compile(r"[^\s,={}()\"#%]+").match(self.text, self.pos)
        if not match:
            raise self.error("expected a name", "an entry type, key or field name")
        self.pos = match.end()
        return match.group()

    def braced(self) -> str:
        """The text inside a {...} group whose opening brace is at ``pos`` (nesting kept)."""
        start = self.pos
        depth = 0
        for index in range(self.pos, len(self.text)):
            char = self.text[index]
            if char == "{" and self.text[index - 1] != "\\":
                depth += 1
            elif char == "}" and self.text[index - 1] != "\\":
                depth -= 1
                if depth == 0:
                    self.pos = index + 1
                    return self.text[start + 1 : index]
        raise self.error("unbalanced braces", "a closing '}'", start)

    def quoted(self) -> str:
        start = self.pos
        depth = 0
        for index in range(self.pos + 1, len(self.text)):
            char = self.text[index]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            elif char == '"' and depth == 0 and self.text[index - 1] != "\\":
                self.pos = index + 1
                return self.text[start + 1 : index]
        raise self.error("unterminated quoted value", "a closing '\"'", start)

    def value(self, macros: dict[str, str]) -> str:
        """A field value: pieces joined by ``#``."""
        parts = []
        while True:
            char = self.peek()
            if char == "{":
                parts.append(self.braced())
            elif char == '"':
                parts.append(self.quoted())
            else:
                start = self.pos
                word = self.name()
                if word.isdigit():
                    parts.append(word)
                elif word.lower() in macros:
                    parts.append(macros[word.lower()])
                else:
                    raise self.error(f"unknown @string macro {word!r}", "a defined macro", start)
            if self.peek() != "#":
                return "".join(parts)
            self.pos += 1


def parse_bibtex(text: str, source: str = "<bibtex>") -> dict[str, Entry]:
    """Parse BibTeX text into entries by key; raise a ContentError naming source:line."""
    reader = _Reader(text, source)
    macros = dict(MONTHS)
    entries: dict[str, Entry] = {}
    while True:
        at = text.find("@", reader.pos)
        if at < 0:
            return entries
        reader.pos = at + 1
        kind = reader.name().lower()
        if kind == "comment":
            if reader.peek() in "{(":
                close = "}" if reader.peek() == "{" else ")"
                end = text.find(close, reader.pos)
                reader.pos = len(text) if end < 0 else end + 1
            continue
        opening = reader.expect("{(")
        closing = "}" if opening == "{" else ")"
        if kind == "preamble":
            reader.value(macros)
            reader.expect(closing)
            continue
        if kind == "string":
            name = reader.name().lower()
            reader.expect("=")
            macros[name] = reader.value(macros)
            reader.expect(closing)
            continue
        line = reader.line(at)
        key = reader.name()
        fields: dict[str, str] = {}
        while True:
            char = reader.expect("," + closing)
            if char == closing or reader.peek() == closing:
                if char != closing:
                    reader.pos += 1
                break
            field = reader.name().lower()
            reader.expect("=")
            fields[field] = latex_to_text(reader.value(macros))
        if key in entries:
            raise ContentError(
                f"duplicate BibTeX key {key!r}",
                where=f"{source}:{line}",
                expected="each key once",
                got=f"also defined at line {entries[key].line}",
                fix="rename or remove one of the two entries",
            )
        entries[key] = Entry(kind, key, fields, source, line)


def read_bibtex(paths: list[Path]) -> dict[str, Entry]:
    """The entries of several .bib files; a key defined twice is an error."""
    entries: dict[str, Entry] = {}
    for path in paths:
        text = read_text(path, limit=MAX_BIB_BYTES, error=ContentError, kind="bibliography")
        for key, entry in parse_bibtex(text, str(path)).items():
            if key in entries:
                raise ContentError(
                    f"duplicate BibTeX key {key!r}",
                    where=f"{entry.source}:{entry.line}",
                    got=f"also in {entries[key].source}:{entries[key].line}",
                    fix="rename or remove one of the two entries",
                )
            entries[key] = entry
    return entries


def latex_to_text(value: str) -> str:
    """Common LaTeX in BibTeX values -> plain Unicode text."""

    def accent(match: re.Match[str]) -> str:
        return match.group(2) + _ACCENTS[match.group(1)]

    text = re.sub(r"\\([\"'`^~=.])\s*\{?\s*(\\?[A-Za-z])\}?", accent, value)
    text = re.sub(r"\\([cvuHk])\s*\{\s*([A-Za-z])\s*\}", accent, text)
    text = re.sub(r"\\([cvuHk])\s+([A-Za-z])", accent, text)
    text = text.replace("\\i", "i")
    text = re.sub(r"\\(ss|aa|AA|ae|AE|o|O|l)(?![A-Za-z])\s?", lambda m: _LETTERS[m.group(1)], text)
    text = re.sub(r"\\([&%$#_{}])", r"\1", text)
    text = re.sub(r"\\[A-Za-z]+\*?\s*", "", text)  # other commands: keep their arguments
    text = text.replace("---", "\u2014").replace("--", "\u2013").replace("~", "\u00a0")
    text = text.replace("{", "").replace("}", "")
    return unicodedata.normalize("NFC", re.sub(r"[ \t\r\n]+", " ", text).strip(" "))


def split_authors(value: str) -> list[str]:
    """``"Olah, Chris and Carter, Shan"`` -> ``["Chris Olah", "Shan Carter"]``."""
    names = []
    for name in re.split(r"\s+and\s+", value.strip()):
        if not name:
            continue
        if name.lower() == "others":
            names.append("et al.")
            continue
        parts = [p.strip() for p in name.split(",")]
        if len(parts) == 2:
            name = f"{parts[1]} {parts[0]}"
        elif len(parts) == 3:  # von Last, Jr, First
            name = f"{parts[2]} {parts[0]}, {parts[1]}"
        names.append(name.strip())
    return names


def format_authors(value: str) -> str:
    """Authors as readers write them: "A", "A and B", "A, B and C"."""
    names = split_authors(value)
    if len(names) > 1 and names[-1] == "et al.":
        return ", ".join(names[:-1]) + " et al."
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def format_entry(entry: Entry) -> Markup:
    """The entry as escaped HTML: authors, title, venue, year, and a link when it has one."""
    f = entry.fields
    parts: list[Markup] = []
    if "author" in f or "editor" in f:
        authors = format_authors(f.get("author") or f["editor"]).rstrip(".")
        parts.append(escape(authors) + Markup("."))
    if "title" in f:
        title = f["title"].rstrip(".")
        url = f.get("url") or (f"https://doi.org/{f['doi']}" if "doi" in f else "")
        if url.startswith(("http://", "https://")):
            parts.append(Markup('<a href="{}">{}</a>.').format(url, title))
        else:
            parts.append(escape(title) + Markup("."))
    venue = f.get("journal") or f.get("booktitle") or f.get("publisher") or f.get("howpublished")
    details = []
    if venue:
        details.append(Markup("<em>{}</em>").format(venue))
    if "volume" in f:
        details.append(escape(f["volume"] + (f"({f['number']})" if "number" in f else "")))
    if "pages" in f:
        details.append(escape(f["pages"]))
    if "year" in f:
        details.append(escape(f["year"]))
    if details:
        parts.append(Markup(", ").join(details) + Markup("."))
    return Markup(" ").join(parts) if parts else escape(entry.key)


def entry_text(entry: Entry) -> str:
    """A one-line plain text form (for tooltips)."""
    f = entry.fields
    authors = format_authors(f.get("author", "")) if "author" in f else ""
    bits = [b.rstrip(".") for b in (authors, f.get("title", ""), f.get("year", "")) if b]
    return ". ".join(bits) or entry.key

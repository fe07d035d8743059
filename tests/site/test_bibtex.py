"""The BibTeX reader: syntax, macros, LaTeX cleanup, errors with lines, formatting."""

from __future__ import annotations

import pytest

from generator.errors import ContentError
from generator.site.bibtex import (
    format_authors,
    format_entry,
    latex_to_text,
    parse_bibtex,
    split_authors,
)

BIB = r"""
Comments outside entries are ignored.
@string{distill = "Distill"}
@comment{ anything {here} }
@preamble{"\newcommand{\x}{y}"}

@article{carter2019,
  author = {Carter, Shan and Armstrong, Zan and others},
  title = {Activation {Atlas}},
  journal = distill,
  year = 2019,
  month = mar,
  doi = {10.23915/distill.00015},
}

@inproceedings(szegedy2015,
  author = "Christian Szegedy and Wei Liu",
  title = "Going Deeper with " # "Convolutions",
  booktitle = {CVPR},
  pages = {1--9}
)
"""


def test_entries_fields_macros_and_concatenation() -> None:
    entries = parse_bibtex(BIB, "refs.bib")
    assert list(entries) == ["carter2019", "szegedy2015"]
    carter = entries["carter2019"]
    assert carter.type == "article"
    assert carter.line == 7
    assert carter.fields["title"] == "Activation Atlas"
    assert carter.fields["journal"] == "Distill"
    assert carter.fields["month"] == "Mar"
    assert carter.fields["year"] == "2019"
    szegedy = entries["szegedy2015"]
    assert szegedy.fields["title"] == "Going Deeper with Convolutions"
    assert szegedy.fields["pages"] == "1\u20139"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (r"G{\"o}del", "Gödel"),
        (r"Schr\"odinger", "Schrödinger"),
        (r"Andr\'{e}", "André"),
        (r"\c{c}a va", "ça va"),
        (r"Stra\ss e", "Straße"),
        (r"R\&D 50\%", "R&D 50%"),
        (r"\emph{very} {Big} Data", "very Big Data"),
        ("a---b~c", "a\u2014b\u00a0c"),
    ],
)
def test_latex_to_text(value: str, text: str) -> None:
    assert latex_to_text(value) == text


def test_authors() -> None:
    assert split_authors("Olah, Chris and Shan Carter and others") == [
        "Chris Olah",
        "Shan Carter",
        "et al.",
    ]
    assert format_authors("A and B") == "A and B"
    assert format_authors("A and B and C") == "A, B and C"
    assert format_authors("A and B and others") == "A, B et al."


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("@article{k,\n  title = {unclosed,\n", "unbalanced braces", 2),
        ("@article{k,\n  title = {A}\n", "unexpected 'end of file'", 3),
        ('@article{k,\n\n  title = "unterminated}', "unterminated quoted value", 3),
        ("@article{k,\n  journal = nosuchmacro\n}", "unknown @string macro 'nosuchmacro'", 2),
        ("@article{k, title={A}}\n@book{k, title={B}}", "duplicate BibTeX key 'k'", 2),
        ("@article{k,\n title {A}}", "unexpected '{'", 2),
    ],
)
def test_errors_name_file_and_line(text: str, message: str, line: int) -> None:
    with pytest.raises(ContentError, match=message) as info:
        parse_bibtex(text, "refs.bib")
    assert info.value.where == f"refs.bib:{line}"


def test_format_entry_escapes_and_links() -> None:
    entries = parse_bibtex(
        "@misc{x, author={<script>Eve</script>}, title={A & B}, url={https://e.org/?a=1&b=2},"
        " howpublished={Web}, year={2020}}"
    )
    html = str(format_entry(entries["x"]))
    assert "<script>" not in html
    assert "&lt;script&gt;Eve&lt;/script&gt;." in html
    assert '<a href="https://e.org/?a=1&amp;b=2">A &amp; B</a>.' in html
    assert html.endswith("<em>Web</em>, 2020.")
    javascript = parse_bibtex("@misc{y, title={T}, url={javascript:alert(1)}}")["y"]
    assert "href" not in str(format_entry(javascript))

"""The content model: front matter, publications, slugs, ordering, drafts, assets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sitekit import write

from generator.errors import ContentError
from generator.site.content import gather_content, parse_front_matter, split_front_matter


def test_front_matter_is_split_and_body_line_counted() -> None:
    data, body, line = split_front_matter("---\ntitle: A\ndate: 2020-01-02\n---\n\nHello\n", "x.md")
    assert data == {"title": "A", "date": dt.date(2020, 1, 2)}
    assert body == "\nHello\n"
    assert line == 5


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("no front matter\n", "has no front matter", 1),
        ("---\ntitle: A\n", "not closed", 1),
        ("---\ntitle: A\nbad: [unclosed\n---\n", "malformed front matter", 4),
        ("---\ntitle: Atlas: a tour\n---\n", "malformed front matter", 2),
        ("---\n- a\n- b\n---\n", "not a mapping", 2),
    ],
)
def test_malformed_front_matter_names_file_and_line(text: str, message: str, line: int) -> None:
    with pytest.raises(ContentError, match=message) as info:
        split_front_matter(text, "pub/a.md")
    assert info.value.where == f"pub/a.md:{line}"
    assert info.value.fix


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "title"),
        ({"title": "A", "date": "yesterday"}, "date"),
        ({"title": "A", "draft": "no"}, "draft"),
        ({"title": "A", "order": 1.5}, "order"),
        ({"title": "A", "authors": [1]}, "authors"),
        ({"title": "A", "slug": "Not A Slug"}, "slug"),
    ],
)
def test_invalid_front_matter_values(data: dict[str, object], key: str) -> None:
    with pytest.raises(ContentError, match=f"front matter '{key}' is invalid") as info:
        parse_front_matter(data, "a.md", [])
    assert info.value.expected


def test_front_matter_values_and_unknown_key_warning() -> None:
    warnings: list[str] = []
    meta = parse_front_matter(
        {"title": " A ", "authors": "Ada", "date": "2021-03-04", "tilte": "x"}, "a.md", warnings
    )
    assert (meta.title, meta.authors, meta.date) == ("A", ("Ada",), dt.date(2021, 3, 4))
    assert warnings == [
        "a.md: unknown front matter key 'tilte' (did you mean 'title'?); it is ignored"
    ]


def _article(title: str, **keys: object) -> str:
    extra = "".join(f"{k}: {v}\n" for k, v in keys.items())
    return f"---\ntitle: {title}\n{extra}---\n\nBody of {title}.\n"


def test_publications_articles_order_drafts_and_assets(tmp_path: Path) -> None:
    content = tmp_path / "content"
    write(content / "index.md", _article("Home"))
    write(content / "logo.png", "png")
    write(content / "b-pub" / "index.md", _article("B"))
    pub = content / "a-pub"
    write(pub / "index.md", _article("A"))
    write(pub / "Second Look.md", _article("Second", order=2))
    write(pub / "first.md", _article("First", order=1))
    write(pub / "undated.md", _article("Undated"))
    write(pub / "dated.md", _article("Dated", date="2020-01-01"))
    write(pub / "wip.md", _article("Work in progress", draft="true"))
    write(pub / "refs.bib", "")
    write(pub / "atlases.toml", "")
    write(pub / "images" / "x.png", "png")
    write(pub / "images" / "notes.md", "not a page")
    write(pub / ".hidden.md", "ignored")

    found = gather_content(content)
    assert [p.name for p in found.publications] == ["a-pub", "b-pub"]
    a = found.publications[0]
    assert [p.meta.title for p in a.articles] == ["First", "Second", "Dated", "Undated"]
    assert [p.url for p in a.articles][:2] == ["a-pub/first.html", "a-pub/second-look.html"]
    assert a.index.url == "a-pub/index.html"
    assert [p.name for p in a.bib_files] == ["refs.bib"]
    assert a.atlases_toml == pub / "atlases.toml"
    assert [p.relative_to(pub).as_posix() for p in a.assets] == ["images/x.png"]
    assert found.root_assets == [content / "logo.png"]
    assert found.site_index is not None and found.site_index.url == "index.html"
    assert any("images/notes.md" in w and "ignored" in w for w in found.warnings)
    assert [p.url for p in found.pages()][:2] == ["index.html", "a-pub/index.html"]

    with_drafts = gather_content(content, include_drafts=True)
    assert "Work in progress" in [p.meta.title for p in with_drafts.publications[0].articles]


def test_publication_needs_an_index_and_a_valid_name(tmp_path: Path) -> None:
    write(tmp_path / "c1" / "pub" / "a.md", _article("A"))
    with pytest.raises(ContentError, match=r"has no index\.md") as info:
        gather_content(tmp_path / "c1")
    assert "atlas new pub" in (info.value.fix or "")
    write(tmp_path / "c2" / "static" / "index.md", _article("S"))
    with pytest.raises(ContentError, match="reserved"):
        gather_content(tmp_path / "c2")
    write(tmp_path / "c3" / "My Pub" / "index.md", _article("S"))
    with pytest.raises(ContentError, match="becomes part of URLs"):
        gather_content(tmp_path / "c3")
    with pytest.raises(ContentError, match="does not exist"):
        gather_content(tmp_path / "nowhere")


def test_slug_front_matter_sets_the_output_name(tmp_path: Path) -> None:
    pub = tmp_path / "content" / "pub"
    write(pub / "index.md", _article("P"))
    write(pub / "a.md", _article("A", slug="renamed"))
    assert (
        gather_content(tmp_path / "content").publications[0].articles[0].url == "pub/renamed.html"
    )

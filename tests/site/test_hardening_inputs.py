"""Hardening against bad input (docs/ARCHITECTURE.md, "Bad input"): every limit fails fast with
a clear error naming the file (and line), never a traceback; the site publishes only what is
inside the content tree; ``atlas new`` and ``atlas serve`` refuse what they must."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
from sitekit import ATLASES, snapshot, write

from generator.cli import main
from generator.config import load_config
from generator.errors import AtlasError, ConfigError, ContentError, SetupError, shown
from generator.site import content as content_module
from generator.site.blocks.blockyaml import load_block
from generator.site.build import build
from generator.site.build_experiments import load_experiments
from generator.site.content import gather_content, split_front_matter
from generator.site.scaffold import new
from generator.site.serve import DevServer, check_loopback
from generator.specs import read_spec_files
from generator.textfiles import MAX_NESTING, parse_toml, read_text

# --- what an error shows -------------------------------------------------------------------


def _laughs(levels: int = 6) -> str:
    """YAML whose last alias expands to 9**levels strings ("billion laughs")."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghij"[: levels - 1]:
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text + f"title: *{previous}\n"


def test_yaml_aliases_are_refused_before_anything_expands() -> None:
    started = time.perf_counter()
    with pytest.raises(ContentError, match=r"anchors \(&a\) are not allowed") as info:
        split_front_matter("---\n" + _laughs() + "---\n", "pub/a.md")
    assert info.value.where == "pub/a.md:2"
    block = "id: grid\ncaption: &c hello\ntour: [*c]\n"
    with pytest.raises(ContentError, match=r"anchors \(&c\)") as info:
        load_block(block, source="pub/a.md", line=10, kind="atlas", keys="id")
    assert info.value.where == "pub/a.md:12"
    with pytest.raises(ContentError, match=r"aliases \(\*x\)"):  # an alias alone is refused too
        load_block("id: *x\n", source="pub/a.md", line=10, kind="atlas", keys="id")
    assert time.perf_counter() - started < 2


def test_errors_show_a_short_excerpt_of_any_value() -> None:
    huge = "x" * 1_000_000
    message = ContentError("bad", where="a.md:3", got=huge).message()
    assert len(message) < 400 and "(1,000,000 characters)" in message
    nested: list[object] = ["lol"] * 9
    for _ in range(8):  # 9**9 strings if it were expanded
        nested = [nested] * 9
    started = time.perf_counter()
    assert len(shown(nested)) < 200
    assert len(shown({"k": huge})) < 200
    assert time.perf_counter() - started < 1
    assert shown({"b": 1, "a": [1, 2]}) == "{'b': 1, 'a': [1, 2]}"  # small values as repr
    long_line = AtlasError("w" * 50_000).message()
    assert len(long_line) < 1200


# --- nesting, size ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 2000])
def test_yaml_nesting_has_a_limit(depth: int) -> None:
    text = "title: x\nauthors: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(ContentError, match=f"nested more than {MAX_NESTING} levels") as info:
        split_front_matter("---\n" + text + "---\n", "a.md")
    assert info.value.where == "a.md:3"
    ok = "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)  # the front matter is level 1
    assert split_front_matter(f"---\ntitle: x\nk: {ok}\n---\n", "a.md")[0]["title"] == "x"


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 2000])
def test_toml_nesting_has_a_limit(depth: int) -> None:
    text = "x = " + "[" * depth + "]" * depth + "\n"  # the document itself is level 1
    with pytest.raises(ConfigError, match="nested too deeply") as info:
        parse_toml(text, where="p/atlases.toml")
    assert info.value.where == "p/atlases.toml"
    assert parse_toml("x = [[1]]\n", where="p")["x"] == [[1]]


def test_a_number_of_thousands_of_digits_is_a_clear_toml_error() -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        parse_toml("x = " + "9" * 5000 + "\n", where="p/atlases.toml")


def test_markdown_nested_too_deeply_is_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = project / "content/study/deep.md"
    write(page, "---\ntitle: Deep\n---\n\n" + "\n".join("    " * i + "- item" for i in range(300)))
    assert main(["--config", str(project / "atlas.toml"), "build"]) == 1
    err = capsys.readouterr().err
    assert f"{page}: the Markdown is nested too deeply" in err and "fix:" in err


def test_a_page_over_the_size_limit_names_the_file_and_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "content"
    write(root / "pub/index.md", "---\ntitle: P\n---\n" + "text " * 400)
    monkeypatch.setattr(content_module, "MAX_PAGE_BYTES", 1000)  # the real limit is 2 MB
    with pytest.raises(ContentError, match="the page is too large") as info:
        gather_content(root)
    assert info.value.where == str(root / "pub/index.md")
    assert info.value.expected == "at most 1,000 bytes"
    assert info.value.got == f"{(root / 'pub/index.md').stat().st_size:,} bytes"


# --- dates, NUL, BOM, encodings ---------------------------------------------------------------


def _page(root: Path, front: str) -> Path:
    write(root / "pub/index.md", "---\ntitle: P\n---\n")
    return write(root / "pub/a.md", f"---\n{front}\n---\n\nText.\n")


@pytest.mark.parametrize("date", ["2024-13-45", "2024-02-30", "2024-02-30 10:00:00"])
def test_unquoted_invalid_dates_are_a_clear_error(tmp_path: Path, date: str) -> None:
    page = _page(tmp_path, f"title: A\ndescription: x\ndate: {date}")
    with pytest.raises(ContentError, match="front matter 'date' is invalid") as info:
        gather_content(tmp_path)
    assert info.value.where == f"{page}:4 (front matter key 'date')"
    assert info.value.got == repr(date)


def test_date_like_text_elsewhere_stays_text_and_real_dates_are_dates(tmp_path: Path) -> None:
    _page(tmp_path, "title: 2024-13-45\ndescription: 2024-02-30\ndate: 2024-02-03")
    page = gather_content(tmp_path).publications[0].articles[0]
    assert (page.meta.title, page.meta.description) == ("2024-13-45", "2024-02-30")
    assert page.meta.date == dt.date(2024, 2, 3)
    block = load_block(
        "caption: 2024-13-45\nn: 2024-02-03\n", source="a", line=1, kind="atlas", keys=""
    )
    assert block.data == {"caption": "2024-13-45", "n": dt.date(2024, 2, 3)}


@pytest.mark.parametrize(
    ("tag", "line"), [("!!int abc", 3), ("!!float x", 3), ("!!bool maybe", 3), ("1" * 5000, 3)]
)
def test_values_yaml_cannot_construct_name_their_line(tag: str, line: int) -> None:
    with pytest.raises(ContentError, match="malformed front matter: cannot read") as info:
        split_front_matter(f"---\ntitle: A\nn: {tag}\n---\n", "a.md")
    assert info.value.where == f"a.md:{line}"


def _content_files(root: Path) -> dict[str, Path]:
    """A publication with a page, a bibliography and an atlases.toml (no atlas tables)."""
    write(root / "content/pub/index.md", "---\ntitle: P\n---\n\nText [@k].\n")
    return {
        "page": root / "content/pub/index.md",
        "bibliography": write(root / "content/pub/refs.bib", "@misc{k, title = {T}}\n"),
        "atlases.toml": write(root / "content/pub/atlases.toml", "# no atlases\n"),
        "atlas.toml": write(
            root / "atlas.toml", '[site]\ntitle = "T"\nsite_url = "https://e.org/"\n'
        ),
    }


def _check(root: Path) -> None:
    """Read every text file of the project as a build does (config, pages, specs, bib)."""
    from generator.site.atlases import load_specs
    from generator.site.bibtex import read_bibtex

    config = load_config(root / "atlas.toml")
    content = gather_content(config.paths.content)
    files = read_spec_files(content.root)
    load_specs(files, content.root)
    load_experiments(files)
    for pub in content.publications:
        read_bibtex(pub.bib_files)


@pytest.mark.parametrize("kind", ["page", "bibliography", "atlases.toml", "atlas.toml"])
def test_nul_bytes_and_invalid_utf8_are_clear_errors_and_a_bom_is_accepted(
    tmp_path: Path, kind: str
) -> None:
    path = _content_files(tmp_path)[kind]
    original = path.read_bytes()
    lines = original.count(b"\n")
    path.write_bytes(b"\xef\xbb\xbf" + original)
    _check(tmp_path)  # a byte-order mark is dropped
    path.write_bytes(original + b"# one\n# two \x00 there\n")
    with pytest.raises(AtlasError, match="holds a NUL character") as info:
        _check(tmp_path)
    assert info.value.where == f"{path}:{lines + 2}"
    path.write_bytes(original + b"# caf\xe9\n")
    with pytest.raises(AtlasError, match="is not UTF-8 text") as info:
        _check(tmp_path)
    assert info.value.where == f"{path}:{lines + 1}"
    assert info.value.got == f"the byte 0xe9 at line {lines + 1}, column 6"


def test_read_text_reads_no_more_than_its_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "a.bib", "x" * 5000)
    with pytest.raises(ContentError, match="the bibliography is too large") as info:
        read_text(path, limit=4096, error=ContentError, kind="bibliography")
    assert info.value.got == "5,000 bytes"
    assert read_text(path, limit=5000, error=ContentError) == "x" * 5000


def test_a_results_file_is_read_with_the_same_limits(tmp_path: Path) -> None:
    from generator.site.blocks.patch_results_block import load_results

    path = write(tmp_path / "experiments/e/results.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ContentError, match=r"not valid JSON|nests arrays and objects too deeply"):
        load_results(path, "a.md:3")
    path.write_text("[" * 40 + "]" * 40)
    with pytest.raises(ContentError, match="nests arrays and objects too deeply"):
        load_results(path, "a.md:3")
    path.write_bytes(b'\xef\xbb\xbf{"format": 0}')  # a BOM is dropped: the format is checked
    with pytest.raises(ContentError, match="malformed at format"):
        load_results(path, "a.md:3")


# --- confinement -----------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside every project: what must never be published."""
    return write(tmp_path / "secret/passwd.png", "root:x:0:0\n")


@pytest.mark.parametrize("name", ["images/chart.png", "stolen.md", "../leak.txt"])
def test_a_symlink_leading_out_of_the_content_tree_is_refused(
    project: Path, outside: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    link = Path(os.path.normpath(project / "content/study" / name))
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    config = str(project / "atlas.toml")
    for command in (["build"], ["check", "--strict"]):
        assert main(["--config", config, *command]) == 1
        err = capsys.readouterr().err
        assert f"{link}: this file lies outside the content folder" in err, err
        assert f"-> {outside}" in err
    assert not (project / "site").exists()


def test_a_symlink_inside_the_content_tree_keeps_working(project: Path) -> None:
    images = project / "content/study/images"
    write(images / "chart.txt", "a chart")
    (images / "same.txt").symlink_to("chart.txt")
    (project / "content/study/notes").mkdir()
    (project / "content/study/notes/index-copy.md.txt").symlink_to("../index.md")
    build(load_config(project / "atlas.toml"), log=None)
    site = project / "site/study"
    assert (site / "images/same.txt").read_text() == "a chart"
    assert (site / "notes/index-copy.md.txt").read_bytes() == (
        project / "content/study/index.md"
    ).read_bytes()


@pytest.mark.parametrize("image", ["absolute", "../../../secret/passwd.png", "images/link.png"])
def test_an_image_atlas_image_must_be_inside_the_content_tree(
    project: Path, outside: Path, image: str
) -> None:
    if image == "absolute":
        image = str(outside)
    if image == "images/link.png":
        (project / "content/study/images/link.png").symlink_to(outside)
    spec = project / "content/study/atlases.toml"
    spec.write_text(ATLASES.replace("images/grid.png", image))
    with pytest.raises(ContentError, match=r"the atlas image of \[atlas.grid\]|this file") as info:
        build(load_config(project / "atlas.toml"), log=None)
    assert "outside the content folder" in info.value.what or "absolute" in info.value.what
    assert not (project / "site").exists()


def test_an_image_atlas_image_elsewhere_in_the_content_tree_is_fine(project: Path) -> None:
    write(project / "content/other/index.md", "---\ntitle: Other\n---\n")
    (project / "content/other/atlases.toml").write_text(
        ATLASES.replace("[atlas.grid]", "[atlas.grid2]").replace(
            "images/grid.png", "../study/images/grid.png"
        )
    )
    build(load_config(project / "atlas.toml"), log=None)
    assert (project / "site/atlases/grid2/viewer.json").is_file()


def test_a_patch_icon_must_be_inside_the_content_tree(project: Path, outside: Path) -> None:
    spec = project / "content/study/atlases.toml"
    table = '\n[experiment.e]\nmodel = "demo"\ndataset = "d"\nsource = "a"\ntarget = "b"\n'
    spec.write_text(ATLASES + table + f'icon = "{outside}"\n')
    with pytest.raises(ContentError, match=r"icon image of \[experiment.e\] is an absolute"):
        load_experiments(read_spec_files(project / "content"))
    spec.write_text(ATLASES + table + 'icon = "../../../secret/passwd.png"\n')
    with pytest.raises(ContentError, match="outside the content folder") as info:
        load_experiments(read_spec_files(project / "content"))
    assert info.value.where and "(pairs[0].icon)" in info.value.where
    spec.write_text(ATLASES + table + 'icon = "images/grid.png"\n')
    assert load_experiments(read_spec_files(project / "content"))["study"][0].id == "e"


# --- the output folder -----------------------------------------------------------------------


def test_only_a_folder_the_build_wrote_is_replaced(project: Path) -> None:
    config = load_config(project / "atlas.toml")
    site = project / "site"
    write(site / ".nojekyll", "")
    write(site / "notes.txt", "keep me")
    with pytest.raises(ConfigError, match="did not build"):
        build(config, log=None)
    assert (site / "notes.txt").read_text() == "keep me"  # .nojekyll alone proves nothing
    (site / "notes.txt").unlink()
    (site / ".nojekyll").unlink()
    build(config, log=None)  # an empty folder is fine
    build(config, log=None)  # and the folder the last build wrote
    before = snapshot(site)
    assert before[".atlas-build"].startswith(b"Written by `atlas build`")
    shutil.rmtree(project / ".atlas-cache")  # the cache is gone: the marker still tells
    build(config, log=None)
    assert snapshot(site) == before
    (site / ".atlas-build").write_text("something else")  # not the tool's marker
    (project / ".atlas-cache/site/state.json").unlink()
    with pytest.raises(ConfigError, match="did not build") as info:
        build(config, log=None)
    assert ".atlas-build" in (info.value.expected or "")
    assert (site / ".atlas-build").read_text() == "something else"


# --- atlas new -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["static", "atlases", "Bad", "fresh/index", "ok/Bad", "a/b/c"])
def test_new_refuses_what_the_build_refuses_and_creates_nothing(
    tmp_path: Path, target: str
) -> None:
    with pytest.raises(ContentError):
        new(target, tmp_path, None, dt.date(2024, 1, 2))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["static", "atlases", "Bad", "-x", "ok", "my_study-2"])
def test_new_and_the_build_share_the_publication_name_rule(tmp_path: Path, name: str) -> None:
    def refused(action: object) -> bool:
        try:
            action()  # type: ignore[operator]
        except ContentError:
            return True
        return False

    project = tmp_path / "project"
    project.mkdir()
    by_new = refused(lambda: new(name, project, None, dt.date(2024, 1, 2)))
    write(tmp_path / "content" / name / "index.md", "---\ntitle: P\n---\n")
    by_build = refused(lambda: gather_content(tmp_path / "content"))
    assert by_new == by_build == (name not in ("ok", "my_study-2"))


def test_new_into_an_existing_article_creates_nothing(tmp_path: Path) -> None:
    write(tmp_path / "content/pub/a.md", "---\ntitle: A\n---\n")
    with pytest.raises(ContentError, match="already exists"):
        new("pub/a", tmp_path, tmp_path / "content", dt.date(2024, 1, 2))
    assert sorted(p.name for p in (tmp_path / "content/pub").iterdir()) == ["a.md"]


# --- atlas serve -----------------------------------------------------------------------------


def _status(server: DevServer, host: str | None) -> int:
    address, port = server.httpd.server_address[:2]
    connection = http.client.HTTPConnection(str(address), port, timeout=10)
    try:
        connection.putrequest("GET", "/__atlas__/reload", skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize(
    "listen",
    [
        "127.0.0.1",
        pytest.param("::1", marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6")),
    ],
)
def test_serve_answers_only_requests_that_name_it(project: Path, listen: str) -> None:
    server = DevServer(project / "atlas.toml", listen, 0, log=lambda _m: None)
    server.start()
    try:
        port = server.httpd.server_address[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert _status(server, host) == 200, host
        for host in (f"attacker.example:{port}", f"127.0.0.1:{port + 1}", "localhost", None):
            assert _status(server, host) == 403, host  # DNS rebinding, another port, none
    finally:
        server.stop()


def test_serve_accepts_ipv6_loopback_and_refuses_other_addresses() -> None:
    assert str(check_loopback("::1")) == "::1"
    assert str(check_loopback("[::1]")) == "::1"
    assert str(check_loopback("localhost")) == "127.0.0.1"
    for host in ("0.0.0.0", "::", "8.8.8.8", "2001:db8::1"):
        with pytest.raises(SetupError, match="only listens on this machine"):
            check_loopback(host)


def test_every_limit_is_documented() -> None:
    """The "Bad input" table of docs/ARCHITECTURE.md names each limit with its default."""
    from generator import errors, textfiles

    doc = (Path(__file__).resolve().parents[2] / "docs/ARCHITECTURE.md").read_text()
    table = doc[doc.index("## Bad input") :].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    for name, value in [
        ("MAX_PAGE_BYTES", textfiles.MAX_PAGE_BYTES),
        ("MAX_TOML_BYTES", textfiles.MAX_TOML_BYTES),
        ("MAX_BIB_BYTES", textfiles.MAX_BIB_BYTES),
        ("MAX_RESULTS_BYTES", textfiles.MAX_RESULTS_BYTES),
        ("MAX_NESTING", textfiles.MAX_NESTING),
        ("VALUE_LIMIT", errors.VALUE_LIMIT),
        ("GOT_LIMIT", errors.GOT_LIMIT),
    ]:
        row = next((r for r in rows if f"`{name}`" in r), "")
        assert f"{value:,}" in row, name


# --- decompression bombs -----------------------------------------------------------------------


def bomb_png(path: Path, side: int) -> Path:
    """A PNG of a few hundred bytes whose header declares ``side`` x ``side`` pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )  # fmt: skip
    return path


@pytest.mark.parametrize("kind", ["png", "svg"])
def test_an_atlas_image_bomb_is_refused_before_decoding(project: Path, kind: str) -> None:
    import time

    images = project / "content/study/images"
    if kind == "png":
        bomb_png(images / "grid.png", 100_000)
        expected = "declares more pixels than an atlas may have"
    else:
        (images / "grid.png").unlink()
        (images / "grid.svg").write_text(
            '<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"/>'
        )
        spec = project / "content/study/atlases.toml"
        spec.write_text(spec.read_text().replace("grid.png", "grid.svg"))
        expected = "must be a raster image"
    atlases = project / "content/study/atlases.toml"
    atlases.write_text(
        atlases.read_text()
        .replace("icon_size = 32", "icon_size = 4000")
        .replace("grid = 10", "grid = 25")
    )
    started = time.monotonic()
    with pytest.raises(ContentError, match=expected) as info:
        build(load_config(project / "atlas.toml"), log=None)
    assert time.monotonic() - started < 30
    assert "grid." in str(info.value.where)
    assert not list((project / ".atlas-cache").rglob("*.png"))  # nothing decoded or cut


def test_a_patch_icon_bomb_is_refused(tmp_path: Path) -> None:
    from generator.experiments.spec import IconSpec
    from generator.site.build_experiments import icon_pixels

    for side in (8_000, 50_000):  # over our limit; over Pillow's own too
        icon = IconSpec(path=bomb_png(tmp_path / f"icon-{side}.png", side))
        with pytest.raises(ContentError, match="more pixels than an icon may have") as info:
            icon_pixels(icon, {}, None, "atlases.toml:3")  # type: ignore[arg-type]
        assert info.value.where == "atlases.toml:3 (icon)"


def test_a_symlink_out_of_the_template_overrides_is_refused(project: Path) -> None:
    secret = project.parent / "secret.txt"
    secret.write_text("not for the site")
    static = project / "overrides/static"
    static.mkdir(parents=True)
    (static / "leak.css").symlink_to(secret)
    with pytest.raises(ConfigError, match="outside") as info:
        build(load_config(project / "atlas.toml"), log=None)
    assert "leak.css" in str(info.value.where)
    assert not (project / "site/static/leak.css").exists()
    (static / "leak.css").unlink()
    (static / "inside.css").write_text("p { color: red }")
    (static / "alias.css").symlink_to(static / "inside.css")  # inside: fine
    build(load_config(project / "atlas.toml"), log=None)
    assert (project / "site/static/alias.css").read_text() == "p { color: red }"

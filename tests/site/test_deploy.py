"""`atlas deploy`: the built site committed to gh-pages with git's plumbing and pushed to a
local bare repository; the working tree, the index and HEAD are never touched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sitekit import make_project, write

from generator.cli import main
from generator.errors import DeployError
from generator.site.deploy import Target, open_repository, pages_url, site_tree

ARTICLE = "content/study/first-look.md"


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def bare(remote: Path, *args: str) -> str:
    return git(remote, f"--git-dir={remote}", *args)


@pytest.fixture(autouse=True)
def git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git as on a fresh machine: no global or system config, an identity, no repository above."""
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Ada Lovelace")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "ada@example.org")


def repository(tmp_path: Path, *, commit: bool = True) -> tuple[Path, Path]:
    """A project in a git repository (its content committed) whose origin is a bare repository."""
    root = make_project(tmp_path / "project")
    write(root / ".gitignore", "/site/\n/.atlas-cache/\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", str(remote))
    if commit:
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "content")
    return root, remote


def deploy(root: Path, *args: str) -> int:
    return main(["--config", str(root / "atlas.toml"), "deploy", *args])


def user_state(root: Path) -> tuple[str, str, bytes, str]:
    """What the user sees of their repository: status, HEAD, the index's bytes, branches."""
    index = root / ".git/index"
    index_bytes = index.read_bytes() if index.exists() else b""  # before status could refresh it
    head = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=root, capture_output=True
    )
    return (
        git(root, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all"),
        head.stdout.decode(),
        index_bytes,
        git(root, "symbolic-ref", "HEAD"),
    )


def test_deploy_pushes_the_site_and_never_touches_the_work_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, remote = repository(tmp_path)
    short = git(root, "rev-parse", "--short", "HEAD")
    # a staged and an unstaged change: deploy must leave both as they are
    (root / "content/study/index.md").write_text(
        (root / "content/study/index.md").read_text() + "More.\n"
    )
    git(root, "add", "content/study/index.md")
    write(root / ARTICLE, (root / ARTICLE).read_text() + "\nA new line.\n")
    before = user_state(root)

    assert deploy(root) == 0
    out = capsys.readouterr().out
    first = bare(remote, "rev-parse", "refs/heads/gh-pages")
    assert f"pushed {first[:12]}" in out and "to origin gh-pages" in out
    assert "cannot tell where the site will appear" in out  # a local remote, no --cname
    assert user_state(root) == before
    assert git(root, "rev-parse", "refs/heads/gh-pages") == first  # the local branch follows

    site = root / "site"
    built = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    listing = bare(remote, "ls-tree", "-r", "gh-pages").splitlines()
    assert sorted(line.split("\t")[1] for line in listing) == built
    assert {"index.html", ".nojekyll", "study/first-look.html", "atlases/grid/atlas.dzi"} <= set(
        built
    )
    assert {line.split()[0] for line in listing} == {"100644"}
    page = subprocess.run(
        ["git", f"--git-dir={remote}", "cat-file", "blob", "gh-pages:study/first-look.html"],
        capture_output=True,
        check=True,
    ).stdout
    assert page == (site / "study/first-look.html").read_bytes()
    assert "A new line." in page.decode()  # built from the working tree, as `atlas build` is
    assert bare(remote, "log", "-1", "--format=%s", "gh-pages") == f"Deploy {short} of main"
    assert bare(remote, "rev-list", "--count", "gh-pages") == "1"

    # a second deployment builds on the first, with a message and a custom domain
    write(root / ARTICLE, (root / ARTICLE).read_text() + "\nAnother line.\n")
    assert deploy(root, "--message", "Second edition", "--cname", "atlas.example.org") == 0
    out = capsys.readouterr().out
    assert f"after {first[:12]}" in out
    assert "the site will appear at https://atlas.example.org/" in out
    second = bare(remote, "rev-parse", "refs/heads/gh-pages")
    assert bare(remote, "rev-parse", "gh-pages^") == first
    assert bare(remote, "log", "-1", "--format=%s", "gh-pages") == "Second edition"
    assert bare(remote, "cat-file", "blob", "gh-pages:CNAME") == "atlas.example.org"
    assert not (site / "CNAME").exists()  # in the deployed tree only
    assert user_state(root)[1:] == before[1:]

    # nothing changed: nothing new committed, the same commit pushed again
    assert deploy(root, "--cname", "atlas.example.org") == 0
    assert "unchanged since" in capsys.readouterr().out
    assert bare(remote, "rev-parse", "refs/heads/gh-pages") == second


def test_deploy_builds_on_the_remote_branch_when_there_is_no_local_one(tmp_path: Path) -> None:
    root, remote = repository(tmp_path)
    assert deploy(root) == 0
    first = bare(remote, "rev-parse", "refs/heads/gh-pages")
    git(root, "branch", "-D", "gh-pages")  # as in a fresh clone
    write(root / ARTICLE, (root / ARTICLE).read_text() + "\nA new line.\n")
    assert deploy(root) == 0
    assert bare(remote, "rev-parse", "gh-pages^") == first


def test_deploy_from_a_repository_without_commits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, remote = repository(tmp_path, commit=False)
    git(root, "add", "atlas.toml")
    before = user_state(root)
    assert deploy(root) == 0
    assert (
        bare(remote, "log", "-1", "--format=%s", "gh-pages") == "Deploy from main (no commits yet)"
    )
    assert user_state(root) == before
    assert "pushed" in capsys.readouterr().out


def test_a_failing_build_pushes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, remote = repository(tmp_path)
    write(root / "atlas.toml", (root / "atlas.toml").read_text() + "\n[site.extra]\nx = 1\n")
    write(root / "content/study/notes.md", "---\ntitle: [unclosed\n---\n\nText.\n")
    before = user_state(root)
    assert deploy(root) == 1
    assert "front matter" in capsys.readouterr().err
    (root / "content/study/notes.md").unlink()
    assert deploy(root) == 1  # a warning (the unknown key) and --strict, the default
    assert "--strict" in capsys.readouterr().err
    assert bare(remote, "for-each-ref") == ""  # nothing pushed
    assert git(root, "for-each-ref", "refs/heads/gh-pages") == ""  # nothing committed
    assert user_state(root)[1:] == before[1:]  # (notes.md was removed: the status differs)
    assert deploy(root, "--no-strict") == 0
    assert bare(remote, "ls-tree", "--name-only", "gh-pages", "index.html") == "index.html"


def test_a_refused_push_says_why_and_force_replaces_the_branch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, remote = repository(tmp_path)
    assert deploy(root) == 0
    ours = git(root, "rev-parse", "gh-pages")
    # someone published an unrelated history to gh-pages meanwhile
    empty = bare(remote, "mktree")
    theirs = bare(remote, "commit-tree", empty, "-m", "theirs")
    bare(remote, "update-ref", "refs/heads/gh-pages", theirs)
    capsys.readouterr()

    assert deploy(root) == 2
    err = capsys.readouterr().err
    assert "was refused" in err and "non-fast-forward" in err and "--force" in err
    assert "Traceback" not in err
    assert bare(remote, "rev-parse", "gh-pages") == theirs
    assert deploy(root, "--force") == 0
    assert bare(remote, "rev-parse", "gh-pages") == ours


def test_deploy_refuses_without_a_repository_or_remote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "project")
    assert deploy(root) == 2
    err = capsys.readouterr().err
    assert "not inside a git repository" in err and "git init" in err
    git(root, "init", "-q", "-b", "main")
    assert deploy(root) == 2
    err = capsys.readouterr().err
    assert "no remote 'origin'" in err and "git remote add origin" in err
    git(root, "remote", "add", "upstream", str(tmp_path / "missing.git"))
    assert deploy(root, "--remote", "origin") == 2
    assert "--remote upstream" in capsys.readouterr().err
    assert deploy(root, "--remote", "upstream") == 2  # configured, but nothing there
    assert "cannot reach the remote 'upstream'" in capsys.readouterr().err
    assert deploy(root, "--cname", "https://atlas.example.org/") == 2
    assert "--cname takes a domain name" in capsys.readouterr().err
    assert not (root / "site").exists()  # every refusal comes before the build
    git(root, "symbolic-ref", "HEAD", "refs/heads/gh-pages")
    assert deploy(root, "--remote", "upstream") == 2
    assert "is checked out here" in capsys.readouterr().err


def test_the_tree_follows_links_only_inside_the_site(tmp_path: Path) -> None:
    root, _ = repository(tmp_path)
    git_in, _ = open_repository(root, Target())
    site = tmp_path / "built"
    write(site / "index.html", "<p>home</p>")
    (site / "copy.html").symlink_to(site / "index.html")
    tree, files, size = site_tree(git_in, site, None)
    listing = git(root, "ls-tree", "-r", tree).splitlines()
    assert [line.split("\t")[1] for line in listing] == [".nojekyll", "copy.html", "index.html"]
    assert {line.split()[0] for line in listing} == {"100644"}
    assert (files, size) == (3, 2 * len("<p>home</p>"))
    assert site_tree(git_in, site, None)[0] == tree  # deterministic
    outside = write(tmp_path / "secret.txt", "secret")
    (site / "leak.txt").symlink_to(outside)
    with pytest.raises(DeployError, match="symbolic link") as info:
        site_tree(git_in, site, None)
    assert info.value.where == str(site.resolve() / "leak.txt")


@pytest.mark.parametrize(
    ("remote", "cname", "url"),
    [
        ("https://github.com/Ada/atlas.git", None, "https://ada.github.io/atlas/"),
        ("https://github.com/ada/atlas", None, "https://ada.github.io/atlas/"),
        ("git@github.com:ada/atlas.git", None, "https://ada.github.io/atlas/"),
        ("ssh://git@github.com/ada/atlas.git", None, "https://ada.github.io/atlas/"),
        ("https://token@github.com/ada/ada.github.io.git", None, "https://ada.github.io/"),
        ("git@github.com:ada/atlas.git", "atlas.example.org", "https://atlas.example.org/"),
        ("https://gitlab.com/ada/atlas.git", None, None),
        ("/srv/git/atlas.git", None, None),
    ],
)
def test_pages_url(remote: str, cname: str | None, url: str | None) -> None:
    assert pages_url(remote, cname) == url

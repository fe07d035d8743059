"""``atlas deploy``: build the site, commit it to the ``gh-pages`` branch, push it (as
``mkdocs gh-deploy`` does), without touching the working tree, the index or HEAD.

The built folder becomes a commit through git's plumbing only: ``hash-object`` stores every
file, a temporary index (``GIT_INDEX_FILE`` in a temporary folder) lists them, ``write-tree``
makes the tree and ``commit-tree`` the commit. Its parent is the branch's previous commit: the
local branch's, or the remote's when that one builds on it (deployed from another clone). The
commit is pushed as ``<sha>:refs/heads/<branch>``; only then does the local branch move
(``update-ref``). A site identical to the previous commit's is not committed again.

The tree is deterministic: every file with mode 100644 at its path under ``site/``, plus
``.nojekyll`` (GitHub Pages would run Jekyll otherwise, which drops ``_``-prefixed files) and a
``CNAME`` when a custom domain is asked for. Symbolic links are not followed out of ``site/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.config import Config
from generator.errors import DeployError, SetupError

#: Lines of git's error output a DeployError leaves out: hints (they suggest `git pull`).
_GIT_HINT = re.compile(r"^\s*hint:")

#: A GitHub remote: https://github.com/o/r(.git), git@github.com:o/r(.git), ssh://git@github.com/o/r
_GITHUB = re.compile(
    r"^(?:https?://(?:[^@/]+@)?github\.com/|(?:ssh://)?git@github\.com[:/])"
    r"(?P<owner>[A-Za-z0-9-]+)/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?/?$"
)

#: A domain for CNAME: labels of letters, digits and inner dashes, at least one dot.
_DOMAIN = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


@dataclass(frozen=True)
class Target:
    """Where and how to publish.

    Attributes:
        remote: the configured remote's name (``origin``).
        branch: the branch GitHub Pages serves (``gh-pages``).
        message: the commit message (None: "Deploy <short sha> of <source branch>").
        force: force the push (replaces a published history this one does not build on).
        cname: a custom domain written as ``CNAME`` into the deployed tree (not into site/).
    """

    remote: str = "origin"
    branch: str = "gh-pages"
    message: str | None = None
    force: bool = False
    cname: str | None = None


@dataclass(frozen=True)
class Deployed:
    """What ``atlas deploy`` pushed.

    Attributes:
        commit: the pushed commit's sha.
        parent: its parent (the previous deployment), None for the branch's first commit.
        changed: False when the site was identical to ``parent``'s: nothing new was committed
            and ``commit`` is that previous commit, pushed again.
        target: where it went.
        remote_url: the remote's URL, without credentials.
        files, bytes: what the deployed tree holds (``.nojekyll`` and ``CNAME`` included).
        url: where GitHub Pages shows the site, None when the remote is not on github.com and
            no domain was given.
    """

    commit: str
    parent: str | None
    changed: bool
    target: Target
    remote_url: str
    files: int
    bytes: int
    url: str | None


class _GitFailed(Exception):
    """A git command that exited non-zero (turned into a DeployError by its caller)."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} exited with {returncode}")
        self.command = f"git {args[0]}"
        self.returncode = returncode
        self.stderr = stderr

    def excerpt(self) -> str:
        lines = [
            line.strip()
            for line in self.stderr.splitlines()
            if line.strip() and not _GIT_HINT.match(line)
        ]
        return "\n    ".join(lines[:8]) or f"(exit status {self.returncode}, no message)"


@dataclass(frozen=True)
class _Git:
    """git run in one work tree (messages in English: they are matched and quoted)."""

    root: Path

    def __call__(
        self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
    ) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=self.root,
            input=input,
            capture_output=True,
            env={**os.environ, "LC_ALL": "C", **(env or {})},
            check=False,
        )
        if result.returncode != 0:
            raise _GitFailed(args, result.returncode, result.stderr.decode(errors="replace"))
        return result.stdout.decode(errors="replace").strip()

    def ok(self, *args: str) -> bool:
        try:
            self(*args)
        except _GitFailed:
            return False
        return True


def deploy(
    config: Config,
    target: Target,
    *,
    strict: bool = True,
    log: Callable[[str], None] = print,
) -> Deployed:
    """Build the site, commit it onto ``target.branch`` and push it; see the module doc.

    Nothing is committed or pushed when the build fails (its error is raised as it is).
    """
    from generator.site.build import build

    if target.cname is not None:
        check_domain(target.cname)
    git, remote_url = open_repository(config.root, target)
    try:
        published = remote_head(git, target)  # before the build: the remote must answer
        message = target.message or default_message(git)
        report = build(config, strict=strict, log=log)
        tree, files, size = site_tree(git, report.output, target.cname)
        parent = choose_parent(git, target, published)
        if parent is not None and git("rev-parse", f"{parent}^{{tree}}") == tree:
            commit, changed = parent, False  # the same site: nothing new to commit
        else:
            parents = ("-p", parent) if parent else ()
            commit, changed = git("commit-tree", tree, *parents, "-m", message), True
        push(git, target, commit)
        local = _local_head(git, target.branch)
        if local != commit:
            ref = f"refs/heads/{target.branch}"
            git("update-ref", "-m", "atlas deploy", ref, commit, local or "")
    except _GitFailed as err:
        raise DeployError(
            f"{err.command} failed",
            where=str(git.root),
            got=err.excerpt(),
            fix="do what git's message says (e.g. `git config user.email you@example.org`"
            " when it asks who you are), then `atlas deploy` again",
        ) from err
    url = pages_url(remote_url, target.cname)
    shown = re.sub(r"//[^/@]+@", "//", remote_url)  # no credentials in what is printed
    return Deployed(commit, parent, changed, target, shown, files, size, url)


def check_domain(cname: str) -> None:
    """Refuse a ``--cname`` that is not a bare domain name."""
    if not _DOMAIN.fullmatch(cname):
        raise DeployError(
            "--cname takes a domain name",
            expected="a domain such as atlas.example.org (no scheme, no path)",
            got=cname,
            fix="pass --cname with the bare domain",
        )


def open_repository(project: Path, target: Target) -> tuple[_Git, str]:
    """The git work tree holding ``project`` and the URL of ``target.remote``; refuses when
    there is none, when the remote is not configured, or when ``target.branch`` is checked out
    (moving it would change the working tree's HEAD)."""
    if shutil.which("git") is None:
        raise SetupError(
            "git is not installed (atlas deploy commits and pushes with it)",
            fix="install git (https://git-scm.com/downloads), or publish with"
            " `atlas deploy --init` (a GitHub Actions workflow)",
        )
    try:
        root = _Git(project)("rev-parse", "--show-toplevel")
    except _GitFailed as err:
        raise DeployError(
            "not inside a git repository: atlas deploy pushes the site to a branch of one",
            where=str(project),
            got=err.excerpt(),
            fix="`git init` and `git remote add origin https://github.com/<you>/<repo>.git`"
            " in the project's folder, then `atlas deploy` again",
        ) from err
    git = _Git(Path(root))
    try:
        remote_url = git("remote", "get-url", target.remote)
    except _GitFailed as err:
        remotes = git("remote").split()
        raise DeployError(
            f"the repository has no remote {target.remote!r}",
            where=root,
            expected="a configured remote: " + (", ".join(remotes) or "(none configured)"),
            got=target.remote,
            fix=f"`git remote add {target.remote} <url>`"
            + (f", or `atlas deploy --remote {remotes[0]}`" if remotes else ""),
        ) from err
    if _checked_out(git) == target.branch:
        raise DeployError(
            f"the branch {target.branch!r} is checked out here: deploying would replace the"
            " files of this working tree",
            where=root,
            fix="`git switch <your source branch>` (e.g. main), then `atlas deploy` again,"
            " or deploy to another branch with --branch",
        )
    return git, remote_url


def remote_head(git: _Git, target: Target) -> str | None:
    """The sha of ``target.branch`` on the remote, None when it has no such branch."""
    ref = f"refs/heads/{target.branch}"
    try:
        lines = git("ls-remote", "--heads", target.remote, ref).splitlines()
    except _GitFailed as err:
        raise DeployError(
            f"cannot reach the remote {target.remote!r}",
            got=err.excerpt(),
            fix=f"check the network and your access (`git ls-remote {target.remote}` shows the"
            f" same error), or the remote's URL (`git remote -v`)",
        ) from err
    return next((line.split()[0] for line in lines if line.split()[1:] == [ref]), None)


def default_message(git: _Git) -> str:
    """The default commit message, naming the source commit the site was built from:
    ``Deploy <short sha> of <branch>``."""
    branch = _checked_out(git)
    if not git.ok("rev-parse", "-q", "--verify", "HEAD^{commit}"):
        return f"Deploy from {branch or 'HEAD'} (no commits yet)"
    short = git("rev-parse", "--short", "HEAD")
    return f"Deploy {short} of {branch}" if branch else f"Deploy {short} (detached HEAD)"


def site_tree(git: _Git, site: Path, cname: str | None) -> tuple[str, int, int]:
    """Store every file of ``site`` in the repository; returns (tree sha, files, bytes).

    Symbolic links are followed only to files inside ``site``.
    """
    files = _site_files(site)
    extra: dict[str, bytes] = {}
    if ".nojekyll" not in files:
        extra[".nojekyll"] = b""
    if cname is not None:
        check_domain(cname)
        files.pop("CNAME", None)
        extra["CNAME"] = f"{cname}\n".encode()
    paths = sorted(files)
    shas = git(
        "hash-object", "-w", "--no-filters", "--stdin-paths",
        input="".join(f"{files[p]}\n" for p in paths).encode(),
    ).split()  # fmt: skip
    entries = dict(zip(paths, shas, strict=True))
    for path, data in extra.items():
        entries[path] = git("hash-object", "-w", "--no-filters", "--stdin", input=data)
    size = sum(os.stat(files[p]).st_size for p in paths) + sum(len(d) for d in extra.values())
    with tempfile.TemporaryDirectory(prefix="atlas-deploy-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        info = "".join(f"100644 {sha}\t{path}\0" for path, sha in sorted(entries.items()))
        git("update-index", "--add", "-z", "--index-info", input=info.encode(), env=env)
        tree = git("write-tree", env=env)
    return tree, len(entries), size


def _site_files(site: Path) -> dict[str, Path]:
    """Site-relative POSIX path -> the file to store (a link's target inside ``site``)."""
    top = site.resolve()
    files: dict[str, Path] = {}
    for root, dirs, names in os.walk(top):
        folder = Path(root)
        for name in [*dirs, *names]:
            path = folder / name
            rel = path.relative_to(top).as_posix()
            if "\n" in rel:
                raise DeployError(
                    "a file name holds a line break (git's path list cannot carry it)",
                    where=repr(str(path)),
                    fix="rename the file in the content",
                )
            if name in names and not path.is_symlink():
                files[rel] = path
                continue
            if not path.is_symlink():
                continue  # a real folder: walked
            real = path.resolve()
            if name in dirs or not real.is_file() or not real.is_relative_to(top):
                raise DeployError(
                    "a symbolic link in the built site points to a folder or out of it:"
                    " it is not published",
                    where=str(path),
                    got=f"-> {real}",
                    expected="files inside the site folder (atlas build writes no links)",
                    fix=f"remove the link, or copy what it points to into {site}",
                )
            files[rel] = real
    return files


def choose_parent(git: _Git, target: Target, published: str | None) -> str | None:
    """The previous deployment: the local branch, or the remote's when it builds on the local
    one (or there is no local branch); None when neither exists."""
    local = _local_head(git, target.branch)
    if published is None or published == local:
        return local
    if not git.ok("cat-file", "-e", f"{published}^{{commit}}"):
        try:
            git("fetch", "--quiet", "--no-tags", target.remote, f"refs/heads/{target.branch}")
        except _GitFailed as err:
            raise DeployError(
                f"cannot fetch {target.branch!r} from {target.remote!r}",
                got=err.excerpt(),
                fix=f"`git fetch {target.remote} {target.branch}` shows the same error;"
                " fix access, then deploy again",
            ) from err
        published = git("rev-parse", "FETCH_HEAD^{commit}")
    if local is None or git.ok("merge-base", "--is-ancestor", local, published):
        return published
    return local  # diverged: the push is refused unless --force


def push(git: _Git, target: Target, commit: str) -> None:
    """Push ``commit`` as ``target.branch``; a refusal becomes a DeployError with git's words."""
    refspec = f"{'+' if target.force else ''}{commit}:refs/heads/{target.branch}"
    try:
        git("push", "--quiet", target.remote, refspec)
    except _GitFailed as err:
        rejected = "[rejected]" in err.stderr or "non-fast-forward" in err.stderr
        fix = (
            f"the remote's {target.branch!r} holds commits this deployment does not build on:"
            " `atlas deploy --force` replaces it, or build on it with"
            f" `git fetch {target.remote} {target.branch}` and"
            f" `git branch -f {target.branch} FETCH_HEAD`, then `atlas deploy` again"
            if rejected
            else f"check the remote's URL (`git remote -v`) and that you may push to it;"
            f" `git push {target.remote} {commit}:refs/heads/{target.branch}` shows the same"
        )
        why = " (non-fast-forward)" if rejected else ""
        raise DeployError(
            f"the push of {commit[:12]} to {target.remote} {target.branch} was refused{why}",
            got=err.excerpt(),
            fix=fix,
        ) from err


def pages_url(remote_url: str, cname: str | None) -> str | None:
    """Where GitHub Pages shows the site: the custom domain, else ``https://<owner>.github.io/
    <repo>/`` of a github.com remote (``/`` for a ``<owner>.github.io`` repository)."""
    if cname:
        return f"https://{cname}/"
    match = _GITHUB.match(remote_url.strip())
    if match is None:
        return None
    owner, repo = match["owner"].lower(), match["repo"]
    if repo.lower() == f"{owner}.github.io":
        return f"https://{owner}.github.io/"
    return f"https://{owner}.github.io/{repo}/"


def _local_head(git: _Git, branch: str) -> str | None:
    """The sha of the local ``branch``, None when it does not exist."""
    ref = f"refs/heads/{branch}^{{commit}}"
    return git("rev-parse", ref) if git.ok("rev-parse", "-q", "--verify", ref) else None


def _checked_out(git: _Git) -> str | None:
    """The branch HEAD names (it may have no commits yet), None when HEAD is detached."""
    return git("symbolic-ref", "--short", "HEAD") if git.ok("symbolic-ref", "-q", "HEAD") else None

"""The site's subcommands: ``build``, ``serve``, ``check``, ``new``, ``deploy``.

Each handler loads the config (``--config`` or the nearest ``atlas.toml``) and calls one
function; the site modules are imported inside the handlers so ``atlas --help`` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from generator.cluster.options import add_cluster_options, with_cluster_options


def register(subparsers: Any) -> None:
    """Add the site's subcommands to the ``atlas`` parser."""
    p = subparsers.add_parser("build", help="build the site into [paths] output (site/)")
    p.add_argument("--strict", action="store_true", help="fail on warnings (unknown keys, ...)")
    p.add_argument("--drafts", action="store_true", help="include pages marked draft: true")
    add_cluster_options(p)
    p.set_defaults(func=cmd_build)

    p = subparsers.add_parser("serve", help="build, serve on localhost, rebuild on change")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address: 127.0.0.1 (default), ::1 or localhost",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    p.add_argument("--no-drafts", action="store_true", help="leave out draft pages")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser(
        "check", help="validate config, content and links; check the built site's tiles"
    )
    p.add_argument("--strict", action="store_true", help="fail on warnings")
    p.set_defaults(func=cmd_check)

    p = subparsers.add_parser("new", help="scaffold a publication or an article")
    p.add_argument("target", metavar="PUBLICATION[/ARTICLE]")
    p.set_defaults(func=cmd_new)

    p = subparsers.add_parser(
        "deploy",
        help="build the site and push it to the gh-pages branch (GitHub Pages)",
        description="Build the site (--strict unless --no-strict), commit site/ to the gh-pages"
        " branch without touching the working tree, the index or HEAD, and push it. With --init:"
        " write a GitHub Actions workflow that builds and publishes on every push instead.",
    )
    p.add_argument("--remote", default="origin", help="the remote to push to (default origin)")
    p.add_argument("--branch", default="gh-pages", help="the branch to publish (default gh-pages)")
    p.add_argument(
        "--message", "-m", help='the commit message (default "Deploy <sha> of <branch>")'
    )
    p.add_argument("--cname", metavar="DOMAIN", help="publish a CNAME file for a custom domain")
    p.add_argument(
        "--no-strict",
        dest="strict",
        action="store_false",
        help="publish even with warnings; publications this machine cannot compute are left"
        " out (a notice replaces their pages)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="force the push (replaces a published branch this one does not build on);"
        " with --init: replace an existing workflow",
    )
    p.add_argument("--init", action="store_true", help="write .github/workflows/pages.yml")
    p.set_defaults(func=cmd_deploy)


def cmd_build(args: argparse.Namespace) -> int:
    from generator.config import load_config
    from generator.site.build import build

    config = with_cluster_options(load_config(args.config), args)
    build(config, strict=args.strict, include_drafts=args.drafts)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from generator.config import find_config
    from generator.site.serve import serve

    return serve(find_config(args.config), args.host, args.port, include_drafts=not args.no_drafts)


def cmd_check(args: argparse.Namespace) -> int:
    from generator.config import load_config
    from generator.site.check import check_site

    check_site(load_config(args.config), strict=args.strict)
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from generator.config import find_config, load_config
    from generator.errors import ConfigError
    from generator.site.scaffold import new

    try:
        path = find_config(args.config)
    except ConfigError:
        if args.config is not None:
            raise
        project, content = Path.cwd(), None  # a new project: atlas.toml is created too
    else:
        config = load_config(path)
        project, content = config.root, config.paths.content
    created = new(args.target, project, content, dt.date.today())
    for created_path in created:
        print(f"created {created_path}")
    if not created:
        print("nothing to do: every file already exists")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from generator.config import find_config, load_config
    from generator.site.deploy import Target, deploy
    from generator.site.output import human_bytes
    from generator.site.scaffold import deploy_init

    if args.init:
        path = deploy_init(find_config(args.config).parent, force=args.force)
        print(f"wrote {path}")
        print("next: commit it, then in the repository's Settings -> Pages choose")
        print('"GitHub Actions" as the source; every push to main publishes site/.')
        return 0
    config = load_config(args.config)
    target = Target(args.remote, args.branch, args.message, args.force, args.cname)
    done = deploy(config, target, strict=args.strict)
    files = f"{done.files:,} files, {human_bytes(done.bytes)}"
    if done.changed:
        after = f"after {done.parent[:12]}" if done.parent else "the branch's first commit"
        print(f"pushed {done.commit[:12]} ({files}; {after}) to {target.remote} {target.branch}")
    else:
        print(
            f"the site is unchanged since {done.commit[:12]} ({files}): nothing new committed;"
            f" pushed it to {target.remote} {target.branch}"
        )
    if done.url is None:
        print(
            f"cannot tell where the site will appear: {done.remote_url} is not on github.com;"
            " see your host's Pages settings"
        )
        return 0
    print(f"the site will appear at {done.url}")
    print(
        f'(once, in the repository\'s Settings -> Pages: Source "Deploy from a branch",'
        f" {target.branch} / (root); GitHub takes a minute or two to publish)"
    )
    if done.url != config.site.site_url:
        print(
            f"note: [site] site_url is {config.site.site_url}: the sitemap, feed and canonical"
            f" links point there; set it to {done.url} in {config.path} if that is the address"
        )
    return 0

"""The site's subcommands: ``build``, ``serve``, ``check``, ``new``, ``deploy``.

Each handler loads the config (``--config`` or the nearest ``atlas.toml``) and calls one
function; the site modules are imported inside the handlers so ``atlas --help`` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the site's subcommands to the ``atlas`` parser."""
    p = subparsers.add_parser("build", help="build the site into [paths] output (site/)")
    p.add_argument("--strict", action="store_true", help="fail on warnings (unknown keys, ...)")
    p.add_argument("--drafts", action="store_true", help="include pages marked draft: true")
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

    p = subparsers.add_parser("deploy", help="publish with GitHub Pages (see --init)")
    p.add_argument("--init", action="store_true", help="write .github/workflows/pages.yml")
    p.add_argument("--force", action="store_true", help="replace an existing workflow")
    p.set_defaults(func=cmd_deploy)


def cmd_build(args: argparse.Namespace) -> int:
    from generator.config import load_config
    from generator.site.build import build

    build(load_config(args.config), strict=args.strict, include_drafts=args.drafts)
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
    from generator.config import find_config
    from generator.site.scaffold import WORKFLOW_PATH, deploy_init

    project = find_config(args.config).parent
    if args.init:
        path = deploy_init(project, force=args.force)
        print(f"wrote {path}")
        print("next: commit it, then in the repository's Settings -> Pages choose")
        print('"GitHub Actions" as the source; every push to main publishes site/.')
        return 0
    workflow = project / WORKFLOW_PATH
    state = "present" if workflow.is_file() else "missing (run `atlas deploy --init`)"
    print("atlas publishes with GitHub Actions: the workflow builds the site with")
    print("`atlas build --strict` and uploads site/ with actions/upload-pages-artifact,")
    print("then actions/deploy-pages publishes it.")
    print(f"workflow {workflow}: {state}")
    return 0

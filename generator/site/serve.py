"""``atlas serve``: build, serve the output on localhost, rebuild on change, reload the browser.

A development server only: it listens on a loopback address (127.0.0.1 by default; ``::1``
too) and refuses others, and answers only requests whose ``Host`` header names it (localhost,
127.0.0.1 or [::1] with its port): a page of another origin cannot reach it by DNS rebinding. It reuses :func:`generator.site.build.build` (incremental), polls the content, template
and config files for changes, and injects a small script into HTML responses that reloads the
page after a successful rebuild or shows the build error in a banner.

It also injects the *author mode* (``templates/author/atlas-author.js``, never copied into a
built site): each atlas viewer gets a button, and the shortcut Shift+C, that copies the current
view as a tour stop (``- rect: [x, y, w, h]`` and an empty caption) to paste into an atlas
block's ``tour:``.
"""

from __future__ import annotations

import html
import http.server
import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from generator.config import Config, load_config
from generator.errors import AtlasError, SetupError, excerpt
from generator.site.build import build
from generator.site.pages import TEMPLATES, template_dirs

#: An IPv4 or IPv6 address.
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Seconds between two scans for changed sources.
POLL_SECONDS = 0.5

#: Where the injected script asks for the build generation.
RELOAD_PATH = "/__atlas__/reload"

#: The author mode's script, injected into served pages only.
AUTHOR_SCRIPT = TEMPLATES / "author" / "atlas-author.js"

_RELOAD_SCRIPT = """<script>
(function () {
  var generation = %d;
  var style = "position:fixed;left:0;right:0;bottom:0;max-height:50vh;overflow:auto;margin:0;" +
    "padding:1rem;z-index:9999;background:#b00020;color:#fff;font:13px/1.4 monospace;" +
    "white-space:pre-wrap";
  function show(error) {
    var banner = document.getElementById("atlas-build-error");
    if (!error) { if (banner) banner.remove(); return; }
    if (!banner) {
      banner = document.createElement("pre");
      banner.id = "atlas-build-error";
      banner.setAttribute("role", "alert");
      banner.style.cssText = style;
      document.body.appendChild(banner);
    }
    banner.textContent = "atlas build failed:\\n" + error;
  }
  function poll() {
    fetch("%s?since=" + generation).then(function (r) { return r.json(); }).then(function (s) {
      if (s.generation !== generation && !s.error) { location.reload(); return; }
      show(s.error);
      setTimeout(poll, 1000);
    }).catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
</script>"""


def check_loopback(host: str) -> IPAddress:
    """The loopback address ``host`` names (``127.0.0.1``, ``::1`` or ``[::1]``, or a name
    such as ``localhost`` whose every address is loopback; IPv4 preferred, as before);
    refuse any other."""
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(literal)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(literal, None, type=socket.SOCK_STREAM)
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        except (OSError, UnicodeError, ValueError) as err:
            raise SetupError(
                f"cannot resolve host {excerpt(host)!r}", fix="use --host 127.0.0.1"
            ) from err
    if not addresses or not all(address.is_loopback for address in addresses):
        raise SetupError(
            f"atlas serve only listens on this machine, not on {excerpt(host)!r}",
            expected="a loopback address such as 127.0.0.1, ::1 or localhost",
            got=host,
            fix="use --host 127.0.0.1; publish the built site/ (atlas build) to share it",
        )
    return next((a for a in addresses if a.version == 4), addresses[0])


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` header values the server answers (lowercase): the loopback names
    (``localhost``, ``127.0.0.1``, ``[::1]``) and the ``--host`` given, each with the port
    (bare too on port 80). Anything else is refused, so a page of another origin cannot read
    the server through DNS rebinding (its name resolving to 127.0.0.1)."""
    given = host.lower()
    if ":" in given and not given.startswith("["):
        given = f"[{given}]"  # an IPv6 literal, as a Host header writes it
    names = {"localhost", "127.0.0.1", "[::1]", given}
    return frozenset({f"{name}:{port}" for name in names} | (names if port == 80 else set()))


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class SourceWatcher:
    """Detects changes by comparing (mtime, size) snapshots of files under some roots."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self.snapshot = self.scan()

    def scan(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for root in self.roots:
            paths = [root] if root.is_file() else root.rglob("*") if root.is_dir() else []
            for path in paths:
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                if path.is_file():
                    found[str(path)] = (stat.st_mtime_ns, stat.st_size)
        return found

    def changed(self) -> bool:
        now = self.scan()
        changed = now != self.snapshot
        self.snapshot = now
        return changed


class DevServer:
    """The build-serve-rebuild loop, usable from tests (port 0 picks a free port)."""

    def __init__(
        self,
        config_path: Path,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        include_drafts: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        address = check_loopback(host)
        self.config_path = config_path
        self.include_drafts = include_drafts
        self.log = log
        self.generation = 0
        self.error: str | None = None
        self.config = load_config(config_path)
        self.rebuild()
        self.watcher = SourceWatcher(self._sources(self.config))
        handler = partial(_Handler, server_state=self)
        server = _HTTPServer6 if address.version == 6 else _HTTPServer
        self.httpd = server((str(address), port), handler)
        self.hosts = allowed_hosts(host, self.httpd.server_address[1])
        self.stopped = threading.Event()

    @property
    def url(self) -> str:
        address, port = self.httpd.server_address[:2]
        host = str(address, "ascii") if isinstance(address, bytes) else str(address)
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    @property
    def output(self) -> Path:
        return self.config.paths.output

    @staticmethod
    def _sources(config: Config) -> list[Path]:
        return [config.path, config.paths.content, *template_dirs(config)]

    def rebuild(self) -> bool:
        """Build once; keep the error for the browser banner. True when the build succeeded."""
        try:
            self.config = load_config(self.config_path)
            build(self.config, include_drafts=self.include_drafts, log=self.log)
        except AtlasError as err:
            self.error = err.message()
            self.log(f"error: {self.error}")
            return False
        self.error = None
        self.generation += 1
        return True

    def poll_once(self) -> bool:
        """Rebuild if a source changed; True when it did and the rebuild succeeded."""
        if not self.watcher.changed():
            return False
        self.log("change detected; rebuilding")
        ok = self.rebuild()
        self.watcher.roots = self._sources(self.config)
        return ok

    def _watch(self) -> None:
        while not self.stopped.wait(POLL_SECONDS):
            self.poll_once()

    def start(self) -> None:
        """Serve and watch in background threads."""
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def status(self) -> dict[str, Any]:
        return {"generation": self.generation, "error": self.error}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the current output folder; injects the reload script into HTML pages."""

    def __init__(self, *args: Any, server_state: DevServer, **kwargs: Any) -> None:
        self.state = server_state
        super().__init__(*args, directory=str(server_state.output), **kwargs)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the build log is what matters

    def do_HEAD(self) -> None:
        if self._host_allowed():
            super().do_HEAD()

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        path = self.path.split("?", 1)[0]
        if path == RELOAD_PATH:
            self._send(200, "application/json", json.dumps(self.state.status()).encode())
            return
        file = Path(self.translate_path(path))
        if file.is_dir():
            if not path.endswith("/"):
                super().do_GET()  # redirects to the folder with a slash
                return
            file = file / "index.html"
        if file.suffix == ".html" and file.is_file():
            self._send(200, "text/html; charset=utf-8", self._inject(file.read_bytes()))
        elif not file.exists() and self.state.error:
            page = "<!doctype html><title>Build failed</title><body><h1>Build failed</h1>"
            page += f"<pre>{html.escape(self.state.error)}</pre></body>"
            self._send(500, "text/html; charset=utf-8", self._inject(page.encode()))
        elif not file.exists() and (self.state.output / "404.html").is_file():
            self._send(
                404, "text/html; charset=utf-8", (self.state.output / "404.html").read_bytes()
            )
        else:
            super().do_GET()

    def _host_allowed(self) -> bool:
        """Whether the request names this server (see :func:`allowed_hosts`); else answer
        403 and say why."""
        host = (self.headers.get("Host") or "").strip().lower()
        if host in self.state.hosts:
            return True
        body = (
            f"403: atlas serve answers requests for {self.state.url} only (Host header"
            f" {excerpt(host)!r} refused: it protects the server from other sites' pages)\n"
        )
        self._send(403, "text/plain; charset=utf-8", body.encode())
        return False

    def _inject(self, page: bytes) -> bytes:
        script = (_RELOAD_SCRIPT % (self.state.generation, RELOAD_PATH)).encode()
        if b"atlas-figure" in page:  # the author mode, where there are viewers
            author = AUTHOR_SCRIPT.read_text(encoding="utf-8").replace("</", "<\\/")
            script += f"<script>\n{author}</script>".encode()
        index = page.rfind(b"</body>")
        return page + script if index < 0 else page[:index] + script + page[index:]

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def serve(config_path: Path, host: str, port: int, *, include_drafts: bool = True) -> int:
    """Run the development server until Ctrl-C."""
    server = DevServer(config_path, host, port, include_drafts=include_drafts)
    server.start()
    print(f"serving {server.output} at {server.url} (Ctrl-C to stop; pid {os.getpid()})")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping")
    finally:
        server.stop()
    return 0

"""Operations test fixtures: the engine's (a real store, aiosmtpd servers, `serve` processes), a scrape,
a local HTTP receiver for notifications and hook scripts."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailconsole.store import Actor

from engine.conftest import add_mailing, free_port, serve, smtpd_factory, store, wait  # noqa: F401  fixtures

OPERATOR_ACTOR = Actor("operator", "192.0.2.1")
MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """One real HTTP scrape, parsed by the client's own parser: sample name -> [(labels, value)]."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    matches = [v for ls, v in samples.get(name, []) if all(ls.get(k) == x for k, x in labels.items())]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


def metrics_url(proc: subprocess.Popen) -> str:
    """The URL a `serve`/`relay-agent` prints once it listens (started with --metrics HOST:0)."""
    assert proc.stdout is not None
    for _ in range(5):
        line = proc.stdout.readline()
        if line.startswith("metrics at "):
            return line.split()[-1]
    raise AssertionError("no metrics URL printed")


def hook_script(path: Path, body: str) -> Path:
    """An executable shell script (a real hook process)."""
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# Written whole, then renamed: a test polling for it reads only complete events.
RECORDING_HOOK = ('out="$(dirname "$0")/hook-$$"; cat > "$out.part"; env | grep ^MAILCONSOLE_ > "$out.env"; '
                  'mv "$out.part" "$out.json"\n')


def hook_calls(directory: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("hook-*.json"), key=lambda p: p.stat().st_mtime_ns)]


@dataclass
class Receiver:
    """A local HTTP server taking notification POSTs; answers `status` (a list: one per request, then the last)."""

    status: list[int] = field(default_factory=lambda: [200])
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec.requests.append((self.path, dict(self.headers), body))
            code = rec.status.pop(0) if len(rec.status) > 1 else rec.status[0]
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()

"""The console tells the notification hook of its stops and resumes; a failing hook is shown."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from mailconsole.ops.notify import Notifier
from mailconsole.store import accounts

from .pilot import drive, press, settle

# Written whole, then renamed: the test reads only complete events.
HOOK = '#!/bin/sh\nf="$(dirname "$0")/event-$$"; cat > "$f.part"; mv "$f.part" "$f.json"\n'


def _hook(tmp_path: Path, body: str = HOOK) -> Path:
    path = tmp_path / "hook.sh"
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def _events(pilot, directory: Path, n: int) -> list[dict]:  # type: ignore[no-untyped-def]
    for _ in range(400):  # the hook runs on the notifier's thread: let it
        found = sorted(directory.glob("event-*.json"), key=lambda p: p.stat().st_mtime_ns)
        if len(found) >= n:
            return [json.loads(p.read_text()) for p in found]
        await pilot.pause(0.025)
    raise AssertionError("no notification")


def test_the_stop_key_and_a_resume_are_notified(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    notifier = Notifier(str(_hook(tmp_path)), timeout=10)
    app = make_app(notifier=notifier)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("f2")
        await settle(pilot)
        assert accounts.state(app.store).stopped
        [stop] = await _events(pilot, tmp_path, 1)
        assert stop["event"] == "stop" and stop["who"] == app.actor.user and stop["account"] == "default"
        assert stop["from"]["ssh_client"] == app.actor.ssh_client and stop["from"]["program"] == "mailconsole console"
        assert stop["counts"]["generation"] == accounts.state(app.store).generation and "queued" in stop["counts"]
        await press(pilot, "R", "y")
        assert not accounts.state(app.store).stopped
        events = await _events(pilot, tmp_path, 2)
        assert [e["event"] for e in events] == ["stop", "resume"] and events[1]["counts"]["to_send"] > 0

    drive(app, script)
    assert notifier.close(10)


def test_a_failing_hook_is_shown_and_the_stop_stands(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    notifier = Notifier(str(_hook(tmp_path, "#!/bin/sh\necho 'pager unreachable' >&2\nexit 4\n")), timeout=10,
                        attempts=2, backoff=0.01)
    app = make_app(notifier=notifier)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("exclamation_mark")
        await settle(pilot)
        assert accounts.state(app.store).stopped
        for _ in range(400):
            toasts = [str(n.message) + " " + str(n.title) for n in app._notifications]
            if any("pager unreachable" in t for t in toasts):
                break
            await pilot.pause(0.025)
        assert any("exited with 4: pager unreachable" in t and "tried 2x" in t for t in toasts), toasts

    drive(app, script)
    notifier.close(5)

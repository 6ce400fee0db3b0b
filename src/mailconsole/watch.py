"""Sliding windows of recent outcomes, judged against the store's policy (store/policy.py).

Used by the engine (what the server answered each message) and by the relay
agent (what the relay finally did): each outcome updates one window for its
mailing and one for its account, in constant time and without a store read
(a success is one integer increment per window: see _Window), so the judging
costs nothing that shows on the `null:` rate. A window past a threshold returns a Verdict once; its window is
then emptied, so that after an operator unpauses the mailing it is judged on
what follows, not on what paused it.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from .store.policy import Policy

OK, PERMANENT, BOUNCED, DEFERRED = 0, 1, 2, 3
RULES = {PERMANENT: "permanent", BOUNCED: "bounced", DEFERRED: "deferred"}
TOP_REPLIES = 3
_REPLIES_KEPT = 50  # of the last failures: enough for their most common texts
_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")


def reply_text(reply: str) -> str:
    """A reply with its addresses taken out, so the same refusal for many recipients counts as one text."""
    return _ADDRESS.sub("<address>", " ".join(reply.split()))[:200]


@dataclass(frozen=True)
class Verdict:
    scope: str  # "mailing" or "account"
    key: int  # the mailing id or account id
    rule: str
    figures: dict[str, Any]


class _Window:
    """The last `size` outcomes, kept as the positions of the refusals only.

    Nearly every outcome is a success, and a success only moves the count
    (`seen`); a refusal's position is kept until it leaves the window. So the
    common case costs one integer increment, whatever the window's size.
    """

    __slots__ = ("size", "seen", "marks", "replies")

    def __init__(self, size: int) -> None:
        self.size = size
        self.seen = 0
        self.marks: tuple[deque[int], ...] = (deque(), deque(), deque(), deque())  # by kind; [OK] unused
        self.replies: deque[str] = deque(maxlen=_REPLIES_KEPT)

    def refusal(self, kind: int, reply: str | None) -> None:
        self.seen += 1
        self.marks[kind].append(self.seen)
        if reply:
            self.replies.append(reply)
        oldest = self.seen - self.size  # positions up to this one have left the window
        for marks in self.marks:
            while marks and marks[0] <= oldest:
                marks.popleft()

    def outcomes(self) -> int:
        return min(self.seen, self.size)

    def count(self, kind: int) -> int:
        return len(self.marks[kind])

    def figures(self, rule_kind: int, threshold: float) -> dict[str, Any]:
        n = self.outcomes()
        refused = {kind: self.count(kind) for kind in (PERMANENT, BOUNCED, DEFERRED)}
        top = Counter(reply_text(r) for r in self.replies).most_common(TOP_REPLIES)
        return {
            "outcomes": n, "ok": n - sum(refused.values()), "permanent": refused[PERMANENT],
            "bounced": refused[BOUNCED], "deferred": refused[DEFERRED],
            "rate": round(100.0 * refused[rule_kind] / n, 1), "threshold": threshold,
            "top_replies": [{"reply": text, "count": count} for text, count in top],
        }


class Watch:
    """The windows of one process. Not thread-safe: feed it from one thread (the engine's loop)."""

    def __init__(self, policy: Policy) -> None:
        self._mailings: dict[int, _Window] = {}
        self._accounts: dict[int, _Window] = {}
        self.policy = policy

    @property
    def policy(self) -> Policy:
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        """A new policy (engines re-read it periodically): windows of another size start again."""
        current = getattr(self, "_policy", None)
        self._policy = policy
        p = policy
        self._mailing_limits = [(k, t) for k, t in ((PERMANENT, p.max_permanent), (BOUNCED, p.max_bounced),
                                                    (DEFERRED, p.max_deferred)) if t is not None] if p.auto_pause else []
        self._account_limits = [(k, t) for k, t in ((PERMANENT, p.account_max_permanent), (BOUNCED, p.account_max_bounced),
                                                    (DEFERRED, p.account_max_deferred)) if t is not None] if p.auto_stop else []
        if current is None or current.window != p.window:
            self._mailings.clear()
        if current is None or current.account_window != p.account_window:
            self._accounts.clear()

    def forget(self, mailing_id: int) -> None:
        self._mailings.pop(mailing_id, None)

    def add(self, mailing_id: int, account_id: int | None, kind: int, reply: str | None = None) -> Verdict | None:
        """One outcome; a Verdict when it takes its mailing's (or account's) window past a threshold."""
        p = self._policy
        verdict = None
        if self._mailing_limits:
            verdict = self._feed(self._mailings, mailing_id, p.window, self._mailing_limits, p.min_outcomes,
                                 "mailing", kind, reply, judge=True)
        if account_id is not None and self._account_limits:
            account = self._feed(self._accounts, account_id, p.account_window, self._account_limits,
                                 p.account_min_outcomes, "account", kind, reply, judge=verdict is None)
            verdict = verdict or account
        return verdict

    def _feed(self, windows: dict[int, _Window], key: int, size: int, limits: list[tuple[int, float]], least: int,
              scope: str, kind: int, reply: str | None, judge: bool) -> Verdict | None:
        w = windows.get(key)
        if w is None:
            w = windows[key] = _Window(size)
        if kind == OK:
            # The common case: one count and nothing to judge, since a rate only rises
            # with a refusal; but for the success that makes the window judgeable.
            w.seen += 1
            if w.seen != least:
                return None
        else:
            w.refusal(kind, reply)
        verdict = self._judge(w, limits, least, scope, key) if judge else None
        if verdict is not None:
            del windows[key]  # judged once: what follows starts a new window
        return verdict

    @staticmethod
    def _judge(w: _Window, limits: list[tuple[int, float]], least: int, scope: str, key: int) -> Verdict | None:
        n = w.outcomes()
        if n < least:
            return None
        for kind, threshold in limits:
            if 100.0 * w.count(kind) > threshold * n:
                return Verdict(scope, key, RULES[kind], w.figures(kind, threshold))
        return None

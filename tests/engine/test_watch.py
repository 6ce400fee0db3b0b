"""The policy's sliding windows (watch.py): when they judge, what they report, and that they start again."""

from __future__ import annotations

from mailconsole.store.policy import Policy
from mailconsole.watch import BOUNCED, DEFERRED, OK, PERMANENT, Watch, reply_text

SMALL = Policy(window=20, min_outcomes=10, account_window=1000, account_min_outcomes=1000)


def test_nothing_is_judged_before_the_minimum_and_then_at_once():
    w = Watch(SMALL)
    assert [w.add(1, 7, PERMANENT, f"550 5.1.1 <u{i}@example.net> unknown") for i in range(9)] == [None] * 9
    verdict = w.add(1, 7, PERMANENT, "550 5.1.1 <u9@example.net> unknown")
    assert verdict is not None and (verdict.scope, verdict.key, verdict.rule) == ("mailing", 1, "permanent")
    f = verdict.figures
    assert (f["outcomes"], f["permanent"], f["rate"], f["threshold"]) == (10, 10, 100.0, 10.0)
    assert f["top_replies"] == [{"reply": "550 5.1.1 <address> unknown", "count": 10}]
    assert w.add(1, 7, PERMANENT) is None  # judged once: its window starts again


def test_a_success_that_makes_the_window_judgeable_is_judged():
    # Refusals early, then successes: the rate is over the threshold as soon as the
    # window holds the minimum, whether or not another refusal follows.
    w = Watch(SMALL)
    assert [w.add(1, 7, PERMANENT) for _ in range(3)] == [None] * 3
    assert [w.add(1, 7, OK) for _ in range(6)] == [None] * 6
    verdict = w.add(1, 7, OK)  # the 10th outcome: 3 of 10 refused
    assert verdict is not None and (verdict.scope, verdict.rule, verdict.figures["rate"]) == ("mailing", "permanent", 30.0)
    account = Watch(Policy(auto_pause=False, account_window=20, account_min_outcomes=10))
    assert [account.add(1, 7, PERMANENT) for _ in range(3)] + [account.add(2, 7, OK) for _ in range(6)] == [None] * 9
    verdict = account.add(3, 7, OK)
    assert verdict is not None and (verdict.scope, verdict.key) == ("account", 7)


def test_the_window_slides_old_refusals_out():
    w = Watch(SMALL)
    for _ in range(18):
        assert w.add(1, None, OK) is None
    assert w.add(1, None, PERMANENT) is None
    assert w.add(1, None, PERMANENT) is None  # 2 of the first 20: exactly 10 %, not above
    for _ in range(20):  # and out of the window again
        assert w.add(1, None, OK) is None
    for _ in range(100):  # one refusal in every ten keeps it at 10 % at most: never above
        for _ in range(9):
            assert w.add(1, None, OK) is None
        assert w.add(1, None, PERMANENT) is None
    assert w.add(1, None, PERMANENT) is not None  # a second one inside the last 20: 15 %


def test_each_rule_has_its_threshold_and_off_turns_one_off():
    w = Watch(Policy(window=20, min_outcomes=10, max_deferred=30.0, max_bounced=None))
    for _ in range(7):
        w.add(1, None, OK)
    assert [w.add(1, None, BOUNCED) for _ in range(10)] == [None] * 10  # bounces: off
    w = Watch(Policy(window=20, min_outcomes=10))
    for _ in range(7):
        w.add(2, None, OK)
    assert w.add(2, None, DEFERRED) is None and w.add(2, None, DEFERRED) is None  # 2 of 9
    assert w.add(2, None, DEFERRED) is None  # 3 of 10: 30 %, not above
    verdict = w.add(2, None, DEFERRED)
    assert verdict is not None and verdict.rule == "deferred"


def test_the_account_window_covers_every_mailing():
    w = Watch(Policy(window=1000, min_outcomes=1000, account_window=50, account_min_outcomes=40,
                     account_max_permanent=15.0))
    verdicts = [w.add(mailing, 3, PERMANENT if i % 4 == 0 else OK) for i in range(39) for mailing in (10, 11)]
    judged = [v for v in verdicts if v is not None]
    assert len(judged) == 1 and (judged[0].scope, judged[0].key) == ("account", 3)


def test_a_new_policy_applies_and_the_switch_stops_judging():
    w = Watch(SMALL)
    w.policy = Policy(auto_pause=False, auto_stop=False)
    assert all(w.add(1, 1, PERMANENT) is None for _ in range(5000))


def test_reply_texts_lose_their_addresses_and_extra_space():
    assert reply_text("550  5.1.1 <Ann@Example.com>:\n  user unknown") == "550 5.1.1 <address>: user unknown"

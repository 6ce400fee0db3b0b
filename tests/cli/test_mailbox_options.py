"""The CLI's sender with display name, Reply-To, List-Id and List-Unsubscribe options, end to end."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def parts(cli, files):  # type: ignore[no-untyped-def]
    assert cli("init").code == 0
    csv = files("r.csv", "email,first_name\n" + "".join(f"u{i}@example.com,N{i}\n" for i in range(3)))
    body = files("body.txt", "Hello {{ first_name }}\n")
    return ["--name", "Shop news", "--subject", "Hi {{ first_name }}", "--body-file", str(body), "--recipients", str(csv)]


def _json(cli, mid: int) -> dict:  # type: ignore[no-untyped-def]
    r = cli("mailings", "--json")
    assert r.code == 0, r.err
    return next(m for m in json.loads(r.out) if m["id"] == mid)


def test_create_with_a_display_name_and_reply_to_shows_them_everywhere(cli, parts):
    r = cli("create", *parts, "--from", "Bücher & Co. <news@shop.example.com>", "--reply-to", "help@shop.example.com")
    assert r.code == 0, r.err
    mid = int(r.out)
    m = _json(cli, mid)
    assert (m["sender"], m["sender_name"], m["reply_to"]) == ("news@shop.example.com", "Bücher & Co.", "help@shop.example.com")
    assert m["from"] == '"Bücher & Co." <news@shop.example.com>'
    shown = cli("template", "show", str(mid))
    assert shown.code == 0 and 'from "Bücher & Co." <news@shop.example.com>' in shown.out
    assert "reply-to: help@shop.example.com" in shown.out


def test_like_takes_the_display_name_and_reply_to_unless_given(cli, parts, files):
    first = int(cli("create", *parts, "--from", "Shop <news@shop.example.com>", "--reply-to", "Help <h@shop.example.com>").out)
    other = files("r2.csv", "email,first_name\nnew@example.com,New\n")
    r = cli("create", "--like", str(first), "--recipients", str(other))
    assert r.code == 0, r.err
    m = _json(cli, int(r.out))
    assert (m["from"], m["reply_to"]) == ("Shop <news@shop.example.com>", "Help <h@shop.example.com>")
    r = cli("create", "--like", str(first), "--recipients", str(other), "--from", "Other <o@shop.example.com>")
    assert _json(cli, int(r.out))["from"] == "Other <o@shop.example.com>"


@pytest.mark.parametrize(("sender", "says"), [
    ("Shop <news@bücher.de>", "is not ASCII"),
    ("Shop <news@shop.example.com", "is not one mailbox"),
    ("a@shop.example.com, b@shop.example.com", "is not a valid address"),
    ("Shop <a@shop.example.com>, Other <b@shop.example.com>", "is not one mailbox"),
    ("Sh\x1bop <news@shop.example.com>", "control character \\x1b"),
    ("=?utf-8?q?Bank?= <news@shop.example.com>", "'=?'"),
    ("Shop <not an address>", "is not"),
])
def test_a_bad_sender_is_refused_with_one_line_and_nothing_created(cli, parts, sender, says):
    r = cli("create", *parts, "--from", sender)
    assert r.code == 1 and says in r.err and r.err.count("\n") == 1, r.err
    assert json.loads(cli("mailings", "--json").out) == []


def test_a_bad_reply_to_is_refused(cli, parts):
    r = cli("create", *parts, "--from", "news@shop.example.com", "--reply-to", "Help <help@shöp.example.com>")
    assert r.code == 1 and "Reply-To" in r.err and "is not ASCII" in r.err
    assert json.loads(cli("mailings", "--json").out) == []


def test_list_id_and_a_templated_list_unsubscribe_are_kept_and_shown(cli, parts):
    unsub = "<https://shop.example.com/u?e={{ email|urlencode }}>"
    r = cli("create", *parts, "--from", "news@shop.example.com", "--list-id", "Shop news <news.shop.example.com>",
            "--list-unsubscribe", unsub)
    assert r.code == 0, r.err
    m = _json(cli, int(r.out))
    assert (m["list_id"], m["list_unsubscribe"]) == ("Shop news <news.shop.example.com>", unsub)
    shown = cli("template", "show", r.out.strip()).out
    assert "list-id: Shop news <news.shop.example.com>" in shown and f"list-unsubscribe: {unsub}" in shown


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--list-unsubscribe", "<https://shop.example.com/u?e={{ nosuchfield }}>", "unknown merge field 'nosuchfield'"),
    ("--list-unsubscribe", "<ftp://shop.example.com/{{ email }}>", "neither mailto: nor http(s):"),
    ("--list-unsubscribe", "<https://shop.example.com/{{ first_name ~ ' x' }}>", "rendered for a recipient"),
    ("--list-id", "Shop news", "is not of the form"),
    ("--list-id", "Shöp <news.shop.example.com>", "is not of the form"),
    ("--list-id", "<nodot>", "is not of the form"),
])
def test_bad_list_headers_are_refused_before_anything_is_created(cli, parts, option, value, says):
    r = cli("create", *parts, "--from", "news@shop.example.com", option, value)
    assert r.code == 1 and says in r.err and r.err.count("\n") == 1, r.err
    assert json.loads(cli("mailings", "--json").out) == []


def test_the_account_default_list_id_is_set_shown_cleared_and_audited(cli):
    assert cli("init").code == 0
    assert "default List-Id (none)" in cli("list-id").out
    r = cli("list-id", "Shop  news <news.shop.example.com>")
    assert r.code == 0 and "default List-Id Shop  news <news.shop.example.com>" in r.out, r.err
    assert "news.shop.example.com" in cli("list-id").out
    bad = cli("list-id", "not a list id")
    assert bad.code == 1 and "is not of the form" in bad.err
    assert "news.shop.example.com" in cli("list-id").out  # unchanged by the refusal
    assert cli("list-id", "--clear").code == 0 and "(none)" in cli("list-id").out
    audit = json.loads(cli("audit", "--json").out)
    assert [e["action"] for e in audit].count("list-id") == 2

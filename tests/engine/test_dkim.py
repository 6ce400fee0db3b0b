"""DKIM signing: what a real SMTP server receives verifies with dkimpy against the test's public key."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailconsole.engine import Engine
from mailconsole.engine.config import ConfigError
from mailconsole.engine.dkim_signing import load_signer
from mailconsole.engine.message import CompiledRevision, RevisionData

from .conftest import add_mailing, fast_config, parse, running, wait_done


@pytest.fixture(scope="module")
def keypair(tmp_path_factory) -> tuple[Path, bytes]:  # type: ignore[no-untyped-def]
    """A 2048-bit RSA key file and the DNS TXT record that publishes its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "private.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _dns(record: bytes):  # type: ignore[no-untyped-def]
    asked: list[bytes] = []

    def txt(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record

    return txt, asked


async def test_signed_messages_verify_and_cover_the_one_click_headers(store, tmp_path, smtpd_factory, keypair):
    key_file, record = keypair
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 3, html="<p>Hi {{ name }}</p>", sender="Bücher <news@shop.example>",
                      list_unsubscribe="<https://shop.example/u?e={{ email|urlencode }}>", list_id="<news.shop.example>")
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", dkim_key_file=str(key_file), dkim_selector="mc2026",
                      dkim_domain="shop.example")
    async with running(store, cfg):
        assert (await wait_done(store, mid)).sent == 3
    dns, asked = _dns(record)
    for received in handler.messages:
        assert dkim.verify(received.data, dnsfunc=dns)
        msg = parse(received.data)
        tags = dict(t.strip().split("=", 1) for t in "".join(msg["DKIM-Signature"].split()).split(";") if t.strip())
        assert (tags["d"], tags["s"], tags["a"]) == ("shop.example", "mc2026", "rsa-sha256")
        signed = {h.lower() for h in tags["h"].split(":")}
        assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= signed
        # A changed unsubscribe header no longer verifies: the signature covers it.
        tampered = received.data.replace(b"List-Unsubscribe: <https://shop.example/", b"List-Unsubscribe: <https://evil.example/")
        assert tampered != received.data and not dkim.verify(tampered, dnsfunc=dns)
    assert set(asked) == {b"mc2026._domainkey.shop.example."}


def test_bad_dkim_settings_are_refused_without_showing_the_key(tmp_path, keypair, store):
    key_file, _ = keypair
    with pytest.raises(ConfigError, match="missing dkim_selector"):
        load_signer(str(key_file), None, "shop.example")
    not_a_key = tmp_path / "secret.txt"
    not_a_key.write_text("hunter2-the-real-secret\n")
    with pytest.raises(ConfigError) as err:
        load_signer(str(not_a_key), "s1", "shop.example")
    assert "does not hold a PEM RSA private key" in str(err.value) and "hunter2" not in str(err.value)
    with pytest.raises(ConfigError, match="not a DNS name"):
        load_signer(str(key_file), "bad selector", "shop.example")
    with pytest.raises(ConfigError, match="cannot read"):
        Engine(store, fast_config(dkim_key_file=str(tmp_path / "missing.pem"), dkim_selector="s", dkim_domain="d.example"))
    signer = load_signer(str(key_file), "s1", "shop.example")
    assert "PRIVATE" not in repr(signer) and "PRIVATE" not in repr(fast_config(dkim_key_file=str(key_file)))


def test_signing_cost_per_message(keypair, capsys):
    """Printed beside the other per-message costs (docs/benchmarks.md); bounded so a regression shows."""
    key_file, _ = keypair
    rev = RevisionData(1, "Hello {{ name }}", "Dear {{ name }},\n" + "our news. " * 200 + "\n", "<p>{{ name }}</p>",
                       "news@shop.example", "<https://shop.example/u>", store_id="x" * 26)
    plain = CompiledRevision(1, rev)
    signed = CompiledRevision(1, rev, signer=load_signer(str(key_file), "s1", "shop.example"))
    n = 200
    costs = []
    for compiled in (plain, signed):
        t = time.perf_counter()
        for i in range(n):
            compiled.build(i, f"user{i}@example.net", {"name": f"User {i}"}, now=1.7e9)
        costs.append((time.perf_counter() - t) / n * 1e6)
    with capsys.disabled():
        print(f"\nbuild: {costs[0]:.0f} µs/message unsigned, {costs[1]:.0f} µs signed (DKIM {costs[1] - costs[0]:.0f} µs)")
    assert costs[1] - costs[0] < 20_000

"""A typical newsletter as the engine builds it, scored by SpamAssassin's local rules.

Text + HTML, a display name, Reply-To, List-Id, a per-recipient https
List-Unsubscribe with one-click, DKIM-signed with a fresh 2048-bit key. Writes
the message to --out and runs `spamassassin -L -t` on it (no network tests;
the DKIM key is not in DNS, so DKIM rules can only say "signed").
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailconsole.engine.dkim_signing import load_signer
from mailconsole.engine.message import CompiledRevision, RevisionData
from mailconsole.store.identity import new_store_id

TEXT = """Hello {{ name }},

our autumn collection is here: forty new titles, from travel guides to
cookbooks, and free delivery on orders over 30 EUR until the end of the month.

See the new titles: https://shop.example.com/autumn

Your order history and preferences are in your account:
https://shop.example.com/account

Kind regards,
the team at Buecher & Co.

You receive this because you subscribed at shop.example.com.
Unsubscribe: https://shop.example.com/u?e={{ email|urlencode }}
"""

HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Autumn at Buecher &amp; Co.</title></head>
<body>
<p>Hello {{ name }},</p>
<p>our autumn collection is here: forty new titles, from travel guides to
cookbooks, and free delivery on orders over 30 EUR until the end of the month.</p>
<p><a href="https://shop.example.com/autumn">See the new titles</a></p>
<p>Your order history and preferences are in
<a href="https://shop.example.com/account">your account</a>.</p>
<p>Kind regards,<br>the team at B&uuml;cher &amp; Co.</p>
<p style="font-size:small">You receive this because you subscribed at shop.example.com.
<a href="https://shop.example.com/u?e={{ email|urlencode }}">Unsubscribe</a></p>
</body></html>
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "newsletter.eml")
    args = ap.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = Path(tempfile.mkdtemp(prefix="mc-dkim-")) / "key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    rev = RevisionData(
        1, "Autumn at Bücher & Co., {{ name }}: forty new titles", TEXT, HTML, "news@shop.example.com",
        "<https://shop.example.com/u?e={{ email|urlencode }}>, <mailto:unsubscribe@shop.example.com>",
        sender_name="Bücher & Co.", reply_to="Kundendienst <help@shop.example.com>", store_id=new_store_id(),
        list_id="Buecher news <news.shop.example.com>",
    )
    signer = load_signer(str(key_file), "mc2026", "shop.example.com")
    built = CompiledRevision(7, rev, signer=signer).build(4711, "anna.schmidt@example.org", {"name": "Anna"})
    args.out.write_bytes(built.data)
    report = subprocess.run(["spamassassin", "-L", "-t"], input=built.data, capture_output=True, timeout=300)
    text = report.stdout.decode("utf-8", "replace")
    print(text[text.find("Content analysis details"):] if "Content analysis details" in text else text[-3000:])


if __name__ == "__main__":
    main()

"""Optional DKIM signing (RFC 6376) for relays that do not sign, with dkimpy.

Configured by three engine settings, all or none: `dkim_key_file` (a PEM RSA
private key), `dkim_selector` and `dkim_domain`. The key is read once when the
engine starts and is never printed: errors name the file, not its content.
Each message is signed once, after it is built (a retry builds and signs it
again: its Date may differ). The signature covers the headers the big mailbox
providers look at, From, Subject and the one-click unsubscribe pair among them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError

# Signed when present. From is required by RFC 6376; List-Unsubscribe and
# List-Unsubscribe-Post must be covered for one-click unsubscribe (RFC 8058).
SIGNED_HEADERS = (
    b"From", b"Reply-To", b"To", b"Subject", b"Date", b"Message-ID", b"List-Id",
    b"List-Unsubscribe", b"List-Unsubscribe-Post", b"MIME-Version", b"Content-Type",
)
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
MAX_KEY_BYTES = 64 * 1024


@dataclass(frozen=True)
class DkimSigner:
    selector: bytes
    domain: bytes
    key: bytes = field(repr=False)

    def sign(self, data: bytes) -> bytes:
        """`data` (CRLF line ends) with its DKIM-Signature header in front."""
        import dkim

        signature = dkim.sign(
            data, self.selector, self.domain, self.key, canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS), linesep=b"\r\n",
        )
        return signature + data


def load_signer(key_file: str | None, selector: str | None, domain: str | None) -> DkimSigner | None:
    """The signer the settings describe, None if DKIM is off, or ConfigError (never showing the key)."""
    given = [name for name, value in (("dkim_key_file", key_file), ("dkim_selector", selector), ("dkim_domain", domain))
             if value]
    if not given:
        return None
    if len(given) < 3:
        missing = sorted({"dkim_key_file", "dkim_selector", "dkim_domain"} - set(given))
        raise ConfigError(f"DKIM needs dkim_key_file, dkim_selector and dkim_domain; missing {', '.join(missing)}")
    assert key_file is not None and selector is not None and domain is not None
    for what, value in (("dkim_selector", selector), ("dkim_domain", domain)):
        if not value.isascii() or not _SELECTOR.fullmatch(value):
            raise ConfigError(f"{what} {value!r} is not a DNS name (letters, digits, hyphens, dots)")
    path = Path(key_file)
    try:
        with path.open("rb") as handle:
            key = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"dkim_key_file {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        import dkim
        from dkim.crypto import parse_pem_private_key

        if len(key) > MAX_KEY_BYTES:
            raise ValueError
        parse_pem_private_key(key)
    except ImportError:
        raise ConfigError("DKIM signing needs the dkimpy package; install it") from None
    except Exception:  # noqa: BLE001  whatever the parser says would quote the key
        raise ConfigError(f"dkim_key_file {path} does not hold a PEM RSA private key") from None
    del dkim
    return DkimSigner(selector.encode("ascii"), domain.encode("ascii"), key)

"""The hostile-input corpus: what operators (or attackers) can type, by class.

Every `Case` is one command line given to a real `mailconsole` process on a store
that already holds a mailing. Each must be refused: exit 1 (refused input) or 2
(usage error), exactly one line on stderr, no traceback, no raw control or bidi
character on the terminal, and the store byte-for-byte as before.

To grow the corpus, add a `Case` to the class's list (or a new list to CLASSES).
Arguments may name the prepared files with `{placeholders}`: see `prepare()`.
`ESCAPED` lists values that are accepted and must be shown escaped; `PIPED` lists
commands whose reader goes away (`| head -1`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

# The mailing already in the store; the cases refer to it as mailing 1.
GOOD_CSV = "email,first_name\nann@example.com,Ann\nbob@example.com,Bob\n"
BODY = "Hello {{ first_name }}\n"


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # after `mailconsole --db STORE`; {placeholders} are filled in
    code: int  # 1 refused input, 2 usage error
    says: str  # a piece of the one error line (case-insensitive)
    stdin: bytes = b""
    db: str | None = None  # another --db (given after STORE, so it wins); {placeholders} allowed
    env: dict[str, str] = field(default_factory=dict)


def create(*extra: str, csv: str = "{csv}", body: str = "{body}", sender: str | None = "news@example.com",
           subject: str = "Hi {{ first_name }}", name: str = "N") -> tuple[str, ...]:
    """`create` with good values; `extra` (later options win) makes one of them hostile."""
    args = ["create", "--name", name, "--subject", subject, "--body-file", body, "--recipients", csv]
    if sender is not None:
        args += ["--from", sender]
    return (*args, *extra)


def prepare(tmp: Path) -> dict[str, str]:
    """Write the files the cases name; returns the placeholders."""
    def write(name: str, data: str | bytes) -> str:
        path = tmp / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return str(path)

    files = {
        "csv": write("good.csv", GOOD_CSV),
        "body": write("body.txt", BODY),
        "dir": str(tmp),
        "missing": str(tmp / "no-such-file"),
        "binary": write("binary.bin", bytes(range(256)) * 64),
        "latin1": write("latin1.txt", "Grüße {{ first_name }}\n".encode("latin-1")),
        "empty": write("empty.txt", ""),
        "hugeline": write("hugeline.txt", "x" * 2_000_000 + "\n"),
        "config_bad": write("bad.toml", "[engine\nworkers = \n"),
        "notastore": write("notastore.db", b"this is not a database at all" * 100),
        "mem": "/proc/self/mem",  # opens, but every read fails (EIO), even for root
    }
    # A socket file: opening it fails (ENXIO) even for root, who can read any 0000 file.
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp / "sock"))
    sock.close()
    files["socket"] = str(tmp / "sock")
    for name, text in CSV_FILES.items():
        files[name] = write(f"{name}.csv", text)
    return files


def fill(arg: str, files: dict[str, str]) -> str:
    """`arg` with each {placeholder} of `files` replaced (templates' own braces stay as they are)."""
    for key, path in files.items():
        arg = arg.replace("{" + key + "}", path)
    return arg


# -- times -------------------------------------------------------------------------

_BAD_TIMES = [
    ("empty", ""), ("blank", "  "), ("past the year 9999 after its zone", "9999-12-31T23:59:59-05:00"),
    ("the last day", "9999-12-31"), ("year 10000", "+10000-01-01"), ("before 1970", "1969-12-31T23:59:59+00:00"),
    ("year 1", "0001-01-01"), ("nan", "nan"), ("inf", "inf"), ("words", "tomorrow"), ("month 13", "2026-13-01"),
    ("February 30", "2026-02-30"), ("hour 25", "2026-01-01T25:00"), ("a number", "1e10"),
    ("a terminal escape", "\x1b[2J2026-01-01"), ("a bidi override", "2026-01-01\u202e"),
]
TIMES = [Case(f"create --at {label}", create("--at", value), 2, "--at") for label, value in _BAD_TIMES] + [
    Case(f"reschedule --at {label}", ("reschedule", "1", "--at", value), 2, "--at") for label, value in _BAD_TIMES[:6]
]

# -- empty values ------------------------------------------------------------------

EMPTY = [
    Case("--account ''", ("--account", "", "status"), 2, "--account"),
    Case("--account blank", ("status", "--account", "   "), 2, "--account"),
    Case("--db ''", ("status",), 2, "--db", db=""),
    Case("--name ''", create(name=""), 2, "--name"),
    Case("--name blank", create(name=" \t "), 2, "--name"),
    Case("--subject ''", create(subject=""), 2, "--subject"),
    Case("--from ''", create(sender=""), 2, "--from"),
    Case("--list-unsubscribe ''", create("--list-unsubscribe", ""), 2, "--list-unsubscribe"),
    Case("template set --subject ''", ("template", "set", "1", "--subject", ""), 2, "--subject"),
    Case("an empty subject file", ("create", "--name", "N", "--from", "a@example.com", "--subject-file", "{empty}",
                                   "--body-file", "{body}", "--recipients", "{csv}"), 1, "subject is empty"),
]

# -- numbers -----------------------------------------------------------------------

NUMBERS = [
    Case(f"--max-age-days {v!r}", ("resume", "--preview", "--max-age-days", v), 2, "--max-age-days")
    for v in ("-1", "-0.001", "nan", "NaN", "inf", "-inf", "1e400", "36501", "", "seven")
] + [
    Case(f"--limit {v!r}", ("audit", "--limit", v), 2, "--limit")
    for v in ("0", "-5", "1.5", "99999999999999999999", "", "ten")
]

# -- ids ---------------------------------------------------------------------------

_BAD_IDS = ["0", "-1", str(2**63), str(2**64), "1.0", "", "x", "0x10", "1e3"]
IDS = [Case(f"pause {v!r}", ("pause", "--", v), 2, "ID") for v in _BAD_IDS] + [
    Case(f"{cmd} {v!r}", (*cmd.split(), "--", v), 2, "ID")
    for cmd in ("unpause", "delete --yes", "requeue", "template show")
    for v in ("-1", str(2**64))
] + [
    Case(f"reschedule {str(2**64)}", ("reschedule", "--at", "2030-01-01", "--", str(2**64)), 2, "ID"),
    Case(f"template set {str(2**63)}", ("template", "set", "--subject", "x", "--", str(2**63)), 2, "ID"),
    Case("create --like -1", create("--like", "-1"), 2, "--like"),
    Case(f"create --like {2**64}", create("--like", str(2**64)), 2, "--like"),
    Case("the largest id, which names nothing", ("pause", str(2**63 - 1)), 1, "does not exist"),
    Case("create --like an id that names nothing", create("--like", "99"), 1, "does not exist"),
]

# -- store URLs and paths ------------------------------------------------------------

STORES = [
    Case("blank --db", ("status",), 2, "no store given", db="   "),
    # A PostgreSQL server that cannot be reached: one line, the password masked (the test checks it never shows).
    Case("PostgreSQL URL of a host that does not resolve", ("status",), 1, "cannot reach store postgresql://u:***@h/db",
         db="postgresql://u:pw@h/db"),
    Case("MySQL URL", ("status",), 2, "unsupported store URL", db="mysql+pymysql://u:pw@h/db"),
    Case("in-memory sqlite://", ("status",), 2, "names no file", db="sqlite://"),
    Case("sqlite:///:memory:", ("status",), 2, "names no file", db="sqlite:///:memory:"),
    Case("another SQLite driver", ("status",), 2, "unsupported", db="sqlite+aiosqlite:///x.db"),
    Case("an http URL", ("status",), 2, "unsupported", db="http://example.com/store"),
    Case("a malformed URL", ("status",), 2, "not a store URL", db=":::://"),
    Case("a directory", ("status",), 1, "is a directory", db="{dir}"),
    Case("a mistyped path", ("status",), 1, "mailconsole init", db="{missing}"),
    Case("init under a file", ("init",), 1, "exists", db="{csv}/store.db"),
    Case("a file that is no database", ("status",), 1, "not a mailconsole store", db="{notastore}"),
    Case("a device", ("status",), 1, "", db="/dev/null"),
    Case("an unsupported URL from the environment", ("status",), 1, "unsupported store URL",
         db=None, env={"MAILCONSOLE_DB": "oracle://u:pw@h/db"}),
]

# -- files ---------------------------------------------------------------------------

_FILE_OPTIONS = {
    "--body-file": lambda p: create(body=p),
    "--html-file": lambda p: create("--html-file", p),
    "--subject-file": lambda p: ("create", "--name", "N", "--from", "a@example.com", "--subject-file", p,
                                 "--body-file", "{body}", "--recipients", "{csv}"),
    "--recipients": lambda p: create(csv=p),
    "serve --config": lambda p: ("serve", "--transport", "null:", "--config", p),
    "template set --body-file": lambda p: ("template", "set", "1", "--body-file", p),
}
_BAD_FILES = {
    "a directory": ("{dir}", "directory"),
    "a missing file": ("{missing}", "no such file"),
    "an unopenable socket": ("{socket}", ""),
    "an unreadable file": ("{mem}", ""),
    "a binary file": ("{binary}", ""),
}
FILES = [
    Case(f"{opt}: {what}", build(path), 1, says)
    for opt, build in _FILE_OPTIONS.items()
    for what, (path, says) in _BAD_FILES.items()
    if not (opt == "serve --config" and what == "a binary file")  # below: bad TOML is a usage error
] + [
    Case("serve --config: a binary file", ("serve", "--transport", "null:", "--config", "{binary}"), 2, "toml"),
    Case("serve --config: bad TOML", ("serve", "--transport", "null:", "--config", "{config_bad}"), 2, "toml"),
    Case("serve --config: /dev/zero", ("serve", "--transport", "null:", "--config", "/dev/zero"), 1, "regular file"),
    Case("--body-file: not UTF-8", create(body="{latin1}"), 1, "not UTF-8"),
    Case("--body-file: /dev/zero (endless)", create(body="/dev/zero"), 1, "larger than"),
    Case("--subject-file: a huge line", ("create", "--name", "N", "--from", "a@example.com", "--subject-file",
                                         "{hugeline}", "--body-file", "{body}", "--recipients", "{csv}"), 1, "limit"),
    Case("--recipients: a huge line", create(csv="{hugeline}"), 1, "line 1"),
    Case("--recipients /dev/stdin: bad rows", create(csv="/dev/stdin"), 1, "stdin line 3",
         stdin=b"email,first_name\nann@example.com,Ann\nnot-an-address,X\n"),
    Case("--recipients /dev/stdin: nothing", create(csv="/dev/stdin"), 1, "empty"),
    Case("--recipients /dev/stdin: NUL bytes", create(csv="/dev/stdin"), 1, "NUL", stdin=b"email\n\0\0\0"),
    Case("--recipients /dev/zero", create(csv="/dev/zero"), 1, "NUL"),
]

# -- addresses -----------------------------------------------------------------------

_BAD_ADDRESSES = [
    ("non-ASCII domain", "s@bücher.de"), ("non-ASCII local part", "jürgen@example.com"),
    ("fullwidth at sign", "a＠example.com"), ("zero-width space", "a\u200b@example.com"),
    ("bidi override", "a\u202e@example.com"), ("two at signs", "a@b@example.com"),
    ("angle brackets", "<a@example.com>"), ("display name", "Ann <a@example.com>"),
    ("quoted local part", '"a b"@example.com'), ("no domain", "a@"), ("no local part", "@example.com"),
    ("double dot", "a..b@example.com"), ("leading dot", ".a@example.com"), ("hyphen-led label", "a@-x.example.com"),
    ("underscore in domain", "a@x_y.example.com"), ("space", "a b@example.com"), ("comma", "a@x.com,b@y.com"),
    ("65-character local part", "a" * 65 + "@example.com"), ("255 characters", "a@" + "b" * 63 + ("." + "c" * 63) * 3),
    ("no at sign", "not-an-address"), ("IP literal typo", "a@[300.1.1.1.1]"),
]
_HEADER_BREAKS = [("CR LF", "\r\n"), ("LF", "\n"), ("CR", "\r"), ("U+2028", "\u2028"), ("NEL", "\x85")]
_BAD_LIST_UNSUBSCRIBE = [
    ("no angle brackets", "mailto:u@example.com"), ("javascript", "<javascript:alert(1)>"),
    ("ftp", "<ftp://example.com/u>"), ("no host", "<https://>"), ("space in URI", "<https://example.com/a b>"),
    ("non-ASCII", "<mailto:ü@example.com>"), ("non-ASCII host", "<https://bücher.de/u>"),
    ("bad mailto address", "<mailto:nobody>"), ("trailing comma", "<mailto:u@example.com>,"),
    ("empty brackets", "<>"), ("too long", "<https://example.com/" + "a" * 1000 + ">"),
    ("quote", '<https://example.com/"x>'), ("text around", "click <https://example.com/u> here"),
    ("ESC", "<https://example.com/\x1b[2J>"), ("bidi", "<https://example.com/\u202eu>"),
] + [(f"header injection ({label})", f"<mailto:u@example.com>{sep}Bcc: victim@example.com")
     for label, sep in _HEADER_BREAKS]

ADDRESSES = [
    # A sender may have a display name ("Ann <a@example.com>"); a recipient may not.
    Case(f"--from {label}", create(sender=value), 1, "sender") for label, value in _BAD_ADDRESSES
    if label not in ("angle brackets", "display name")
] + [
    Case(f"--from display name with {label}", create(sender=value), 1, says) for label, value, says in [
        ("an escape", "Ann\x1b[2J <a@example.com>", "control character"),
        ("an encoded word", "=?utf-8?b?QmFuaw==?= <a@example.com>", "=?"),
        ("a non-ASCII address", "Ann <a@bücher.de>", "not ASCII"),
        ("two mailboxes", "Ann <a@example.com>, Bob <b@example.com>", "not one mailbox"),
        ("an unclosed bracket", "Ann <a@example.com", "not one mailbox"),
        ("a line break", "Ann\r\nBcc: v@example.com <a@example.com>", "line break"),
    ]
] + [
    Case(f"--reply-to {label}", create("--reply-to", value), 1, "Reply-To")
    for label, value in _BAD_ADDRESSES if label not in ("angle brackets", "display name")
] + [
    Case(f"--from with {label}", create(sender=f"news@example.com{sep}Bcc: victim@example.com"), 1, "line break")
    for label, sep in _HEADER_BREAKS
] + [
    Case(f"recipient {label}", create(csv="/dev/stdin"), 1, "line 2",
         stdin=("email,first_name\n" + ('"' + value.replace('"', '""') + '"') + ",X\n").encode("utf-8"))
    for label, value in _BAD_ADDRESSES
] + [
    Case("recipient with a NUL", create(csv="/dev/stdin"), 1, "NUL", stdin=b"email,first_name\na\0@example.com,X\n"),
    Case("recipient with a CR LF", create(csv="/dev/stdin"), 1, "line 2",
         stdin=b'email,first_name\n"a@example.com\r\nBcc: v@example.com",X\n'),
    Case("duplicate recipient, domain in another case", create(csv="/dev/stdin"), 1, "duplicate recipient",
         stdin=b"email,first_name\nann@Example.COM,A\nann@example.com,B\n"),
    Case("--like a mailing whose sender is not ASCII", create("--like", "2", sender=None), 1, "--like"),
] + [
    Case(f"--list-unsubscribe {label}", create("--list-unsubscribe", value), 1, "List-Unsubscribe")
    for label, value in _BAD_LIST_UNSUBSCRIBE
]

# -- CSV structure -------------------------------------------------------------------

CSV_FILES = {
    "csv_empty": "",
    "csv_bom_only": "\ufeff",
    "csv_header_only": "email,first_name\n",
    "csv_no_email": "address,first_name\na@example.com,A\n",
    "csv_dup_column": "email,first_name,first_name\na@example.com,A,B\n",
    "csv_bad_column": "email,first name\na@example.com,A\n",
    "csv_bidi_column": "email,first\u202ename\na@example.com,A\n",
    "csv_unterminated": 'email,first_name\na@example.com,"A\nb@example.com,B\n',
    "csv_too_many": "email,first_name\na@example.com,A,extra\n",
    "csv_too_few": "email,first_name\na@example.com\n",
    "csv_empty_email": "email,first_name\n,A\n",
    "csv_esc_value": "email,first_name\na@example.com,\x1b[2JA\n",
    "csv_break_in_subject_field": 'email,first_name\na@example.com,"A\r\nBcc: v@example.com"\n',
    "csv_huge_field": "email,first_name\na@example.com," + "x" * 200_000 + "\n",
    "csv_dup_rows": "email,first_name\na@example.com,A\nb@example.com,B\na@example.com,C\n",
}
CSV = [
    Case("empty file", create(csv="{csv_empty}"), 1, "empty"),
    Case("a BOM only", create(csv="{csv_bom_only}"), 1, "empty"),
    Case("header only", create(csv="{csv_header_only}"), 1, "no recipients"),
    Case("no email column", create(csv="{csv_no_email}"), 1, "no 'email' column"),
    Case("a column twice", create(csv="{csv_dup_column}"), 1, "appears twice"),
    Case("a column name with a space", create(csv="{csv_bad_column}"), 1, "merge field"),
    Case("a column name with a bidi override", create(csv="{csv_bidi_column}"), 1, "merge field"),
    Case("unterminated quote", create(csv="{csv_unterminated}"), 1, "line 2"),
    Case("too many cells", create(csv="{csv_too_many}"), 1, "3 cells"),
    Case("too few cells", create(csv="{csv_too_few}"), 1, "1 cells"),
    Case("empty address", create(csv="{csv_empty_email}"), 1, "invalid address"),
    Case("an ESC in a value", create(csv="{csv_esc_value}"), 1, "control character"),
    Case("a line break in a field used in the subject", create(csv="{csv_break_in_subject_field}"), 1, "line break"),
    Case("a 200,000-character field", create(csv="{csv_huge_field}"), 1, "field"),
    Case("duplicate rows", create(csv="{csv_dup_rows}"), 1, "duplicate recipient"),
]

CLASSES: dict[str, list[Case]] = {
    "times": TIMES,
    "empty values": EMPTY,
    "numbers": NUMBERS,
    "ids": IDS,
    "store URLs and paths": STORES,
    "files": FILES,
    "addresses": ADDRESSES,
    "CSV structure": CSV,
}

# -- accepted, and shown escaped ----------------------------------------------------------
# Each is used as a mailing name and as a stop reason; `mailings`, `status` and `audit`
# must show it without a raw control or bidi character, with the escape visible.

ESCAPED: list[tuple[str, str, str]] = [
    ("clear screen", "x\x1b[2Jy", "\\x1b"),
    ("window title (OSC)", "x\x1b]0;owned\x07y", "\\x1b"),
    ("C1 CSI", "x\x9b31my", "\\x9b"),
    ("carriage return", "x\ry", "\\x0d"),  # a name may not hold one; a reason may
    ("backspace", "x\by", "\\x08"),
    ("right-to-left override", "stopped by \u202eecilA", "\\u202e"),
    ("left-to-right embedding", "a\u202ab", "\\u202a"),
    ("pop directional formatting", "a\u202cb", "\\u202c"),
    ("right-to-left isolate", "a\u2067b\u2069", "\\u2067"),
    ("first strong isolate", "a\u2068b", "\\u2068"),
    ("left-to-right mark", "a\u200eb", "\\u200e"),
    ("right-to-left mark", "a\u200fb", "\\u200f"),
    ("Arabic letter mark", "a\u061cb", "\\u061c"),
]

# -- pipes -------------------------------------------------------------------------------
# Commands whose reader goes away before they write (`| head -1`): exit 141, nothing on stderr.

PIPED: list[tuple[str, ...]] = [
    ("status",), ("status", "--json"), ("mailings",), ("mailings", "--planned", "--json"), ("audit",),
    ("audit", "--json"), ("template", "show", "1"), ("--help",), ("create", "--help"), ("--version",),
]


def counts() -> dict[str, int]:
    """How many inputs each class tries (for docs/reliability.md)."""
    numbers = {name: len(cases) for name, cases in CLASSES.items()}
    numbers["terminal escapes and bidi (accepted, shown escaped)"] = len(ESCAPED)
    numbers["closed pipes"] = len(PIPED)
    return numbers


if __name__ == "__main__":  # `python tests/security/hostile_inputs.py`: the counts
    for name, n in counts().items():
        print(f"{n:4d}  {name}")
    print(f"{sum(counts().values()):4d}  in all")

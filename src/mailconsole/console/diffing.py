"""What differs between two versions of a template: a unified diff per part.

Used wherever an operator must decide between two versions: the detail view's
revision diff, and the editor when another save came in meanwhile. Lines are
compared as the operator sees them (control characters written out).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from rich.text import Text

from . import format as fmt


@dataclass(frozen=True)
class Parts:
    """The parts of a template an operator edits; `html` is None when the mailing has none."""

    subject: str
    text: str
    html: str | None = None


PART_NAMES = (("subject", "Subject"), ("text", "Text body"), ("html", "HTML body"))


def part_diffs(old: Parts, new: Parts, old_label: str, new_label: str, context: int = 3) -> list[tuple[str, list[str]]]:
    """(part title, unified diff lines) for each part that differs, in subject, text, html order."""
    out = []
    for attr, title in PART_NAMES:
        a, b = getattr(old, attr), getattr(new, attr)
        if a == b:
            continue
        lines = list(difflib.unified_diff(
            fmt.visible(a or "", keep="\n\t").splitlines(), fmt.visible(b or "", keep="\n\t").splitlines(),
            fromfile=f"{old_label} {attr}" + ("" if a is not None else " (none)"),
            tofile=f"{new_label} {attr}" + ("" if b is not None else " (none)"),
            n=context, lineterm="",
        ))
        out.append((title, lines))
    return out


def diff_text(old: Parts, new: Parts, old_label: str, new_label: str) -> Text:
    """The diff for a screen: removed lines red, added green, and a plain word when nothing differs."""
    diffs = part_diffs(old, new, old_label, new_label)
    if not diffs:
        return Text(f"{old_label} and {new_label} are the same in subject, text and HTML.")
    text = Text()
    for title, lines in diffs:
        text.append(f"{title} differs\n", style="bold underline")
        for line in lines:
            if line.startswith(("---", "+++")):
                style = "bold"
            elif line.startswith("@@"):
                style = "cyan"
            elif line.startswith("-"):
                style = "red"
            elif line.startswith("+"):
                style = "green"
            else:
                style = ""
            text.append(line + "\n", style=style)
        text.append("\n")
    text.rstrip()
    return text


def diff_plain(old: Parts, new: Parts, old_label: str, new_label: str) -> str:
    """The same diff as plain text (the CLI, files)."""
    return "\n".join(line for _, lines in part_diffs(old, new, old_label, new_label) for line in lines)

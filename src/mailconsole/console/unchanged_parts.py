"""Which parts an edit left as they were, and what they still say that the edit removed elsewhere.

A correction of "30% off" to "20% off" in the subject and text body once went
out with `<b>30% off</b>` still in the HTML part. Before saving, the editor
names every part left unchanged and quotes where it still holds the words the
change took out of the other parts, so a forgotten part is a decision.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .diffing import PART_NAMES, Parts

# Words as an operator would name them: "30%", "€19.99", "Jan-2", "don't".
_WORD = re.compile(r"[^\s<>{}\"'()\[\]|=]+")
_SHOWN_LINE = 60  # characters of a line quoted in the warning
_MOST_QUOTES = 3  # phrases quoted per unchanged part


@dataclass(frozen=True)
class StillSays:
    """A phrase the edit removed from another part, found in an unchanged one."""

    phrase: str
    line: int
    text: str  # that line, shortened


@dataclass(frozen=True)
class Unchanged:
    part: str  # "subject", "text" or "html", as in Parts
    title: str  # "HTML body"
    still_says: tuple[StillSays, ...]


def _words(text: str) -> list[str]:
    return [w.strip(".,;:!?") or w for w in _WORD.findall(text)]


def removed_phrases(old: str, new: str) -> list[str]:
    """The runs of words `old` had and `new` replaced or dropped, in order, each once."""
    a, b = _words(old), _words(new)
    kept = set(b)
    out: list[str] = []
    for op, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op not in ("replace", "delete"):
            continue
        run = [w for w in a[i1:i2] if w not in kept]
        phrase = " ".join(run)
        # One- or two-letter words ("a", "to") would be found everywhere: not a hint.
        if run and (len(phrase) > 2 or any(c.isdigit() for c in phrase)) and phrase not in out:
            out.append(phrase)
    return out


def _find(phrase: str, text: str) -> StillSays | None:
    words = [re.escape(w) for w in phrase.split()]
    # Between words, whatever the other part puts there (spaces, a tag, a line end).
    m = re.search(r"(?<![\w%])" + r"[\W_]+".join(words) + r"(?![\w%])", text)
    if m is None:
        return None
    line_no = text.count("\n", 0, m.start()) + 1
    line = text.splitlines()[line_no - 1].strip() if text else ""
    if len(line) > _SHOWN_LINE:
        line = line[:_SHOWN_LINE - 1] + "…"
    return StillSays(phrase, line_no, line)


def unchanged_parts(old: Parts, new: Parts) -> list[Unchanged]:
    """The parts (that the mailing has) left as they were, when some other part changed."""
    changed = [attr for attr, _ in PART_NAMES if getattr(old, attr) != getattr(new, attr)]
    if not changed:
        return []
    removed: list[str] = []
    for attr in changed:
        for phrase in removed_phrases(getattr(old, attr) or "", getattr(new, attr) or ""):
            if phrase not in removed:
                removed.append(phrase)
    out = []
    for attr, title in PART_NAMES:
        value = getattr(old, attr)
        if attr in changed or value is None:
            continue  # an absent HTML part is not a part left behind
        found = [s for s in (_find(p, value) for p in removed) if s is not None]
        out.append(Unchanged(attr, title, tuple(found[:_MOST_QUOTES])))
    return out


def changed_titles(old: Parts, new: Parts) -> list[str]:
    """The titles of the parts that differ ("Subject", "HTML body"), in order."""
    return [title for attr, title in PART_NAMES if getattr(old, attr) != getattr(new, attr)]


def in_sentence(titles: list[str]) -> str:
    """Part titles inside a sentence: "subject, HTML body" (acronyms kept)."""
    return ", ".join(" ".join(w if w.isupper() else w.lower() for w in t.split()) for t in titles)

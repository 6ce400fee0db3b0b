"""Following a log file that may be rotated, truncated or not there yet.

Read what was appended since the last call, in whole lines; when the file at the
path is another one (rotated: a new inode) or shorter than what was read
(truncated), finish the old file first, then start the new one from its
beginning. A missing file is not an error: the relay may not have written yet.
"""

from __future__ import annotations

import os


class LogFollower:
    MAX_READ = 4 << 20  # per call: a huge backlog is worked off in steps

    def __init__(self, path: str, *, from_end: bool = False) -> None:
        self.path = path
        self._file = None  # type: ignore[var-annotated]
        self._inode: tuple[int, int] | None = None
        self._partial = b""
        self.rotations = 0
        if from_end:
            self._open(seek_end=True)

    def _open(self, *, seek_end: bool = False) -> bool:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return False
        st = os.fstat(f.fileno())
        self._file, self._inode, self._partial = f, (st.st_dev, st.st_ino), b""
        if seek_end:
            f.seek(0, os.SEEK_END)
        return True

    def lines(self) -> list[str]:
        """The complete lines appended since the last call."""
        if self._file is None and not self._open():
            return []
        out = self._read()
        try:
            st = os.stat(self.path)
            current = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            return out  # rotated away and not yet re-created: keep reading the old one
        if current != self._inode or st.st_size < self._file.tell():  # type: ignore[union-attr]
            out += self._read()
            if self._partial:
                out.append(self._partial.decode("utf-8", "replace"))
            self._file.close()  # type: ignore[union-attr]
            self._file = None
            self.rotations += 1
            if self._open():
                out += self._read()
        return out

    def _read(self) -> list[str]:
        data = self._file.read(self.MAX_READ)  # type: ignore[union-attr]
        if not data:
            return []
        data = self._partial + data
        *whole, self._partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in whole]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

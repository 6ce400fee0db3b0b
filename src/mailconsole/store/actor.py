"""Who is acting: the OS user and, over SSH, the client address."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user: str
    ssh_client: str | None = None

    @classmethod
    def current(cls) -> "Actor":
        try:
            user = getpass.getuser()
        except Exception:  # no passwd entry (containers): fall back to the uid
            user = f"uid:{os.getuid()}"
        # "client_ip client_port server_ip server_port" (SSH_CLIENT: "ip port port");
        # a blank or whitespace-only value means no SSH client.
        parts = (os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or "").split()
        return cls(user=user, ssh_client=parts[0] if parts else None)

    def __str__(self) -> str:
        return f"{self.user} from {self.ssh_client}" if self.ssh_client else self.user

"""Errors the store raises; each message is one line that says what to do."""


class StoreError(Exception):
    """The store cannot be used (missing, corrupt, locked, read-only, too new)."""


class NotFound(StoreError):
    """An id names nothing (or something already deleted)."""


class Refused(StoreError):
    """The action is not allowed in the current state."""


class InvalidInput(StoreError):
    """Input (CSV, template, header value) failed validation; nothing was applied."""


class StoreBusy(StoreError):
    """Another writer holds the store's write lock; trying again later can succeed.

    `holder` names that writer when it can be found ("pid 1234: mailconsole
    template set"), else None.
    """

    def __init__(self, message: str, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder

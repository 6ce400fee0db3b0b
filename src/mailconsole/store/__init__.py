"""The store: the single source of truth and the only contract between processes.

One module per concept; the console, the CLI and the engines call these
functions and never write SQL of their own.
"""

from .actor import Actor
from .connection import Store, default_db_url
from .errors import InvalidInput, NotFound, Refused, StoreBusy, StoreError

__all__ = ["Actor", "Store", "default_db_url", "InvalidInput", "NotFound", "Refused", "StoreBusy", "StoreError"]

"""The sender engine: trio workers on real SMTP, and a stop that always wins.

`EngineConfig` configures it, `Engine` runs it inside trio, `EmbeddedEngine`
runs it inside another program (on its own thread, or as a trio guest on the
program's asyncio loop), `service.run_service` runs it headless.
"""

import logging

from .config import EngineConfig
from .embedded import EmbeddedEngine
from .runner import Engine

# A library's logger: silent unless the program configures logging (as `serve`
# does). Inside the console, a stray line on stderr would tear the screen; the
# console shows the engine's last problem from its heartbeat row instead.
logging.getLogger("mailconsole.engine").addHandler(logging.NullHandler())

__all__ = ["EngineConfig", "EmbeddedEngine", "Engine"]

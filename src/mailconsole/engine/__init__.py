"""The sender engine: trio workers on real SMTP, and a stop that always wins.

`EngineConfig` configures it, `Engine` runs it inside trio, `EmbeddedEngine`
runs it on a thread of another program, `service.run_service` runs it headless.
"""

from .config import EngineConfig
from .embedded import EmbeddedEngine
from .runner import Engine

__all__ = ["EngineConfig", "EmbeddedEngine", "Engine"]

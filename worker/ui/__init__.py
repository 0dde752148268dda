"""The commander's dashboard (``/ui``): see ``worker.ui.routes``."""

from worker.ui.routes import ui_router

__all__ = ["ui_router"]

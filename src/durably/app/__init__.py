"""The App: where workflows and steps are registered, started, inspected and run.

Composed of parts each in a module of its own: :mod:`.core` (the :class:`App` itself:
database, registrations, starts, the embedded worker), :mod:`.lifecycle` (commands that steer
workflows from outside), :mod:`.handles` (what an App's :class:`durably.WorkflowHandle` reads)
and :mod:`.results` (waiting for workflows to end).
"""

from durably.app.core import LIVE_WORKER_SECONDS, App

__all__ = ["LIVE_WORKER_SECONDS", "App"]

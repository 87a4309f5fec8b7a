"""The App: where workflows and steps are registered, started, inspected and run.

Composed of parts each in a module of its own, each given what it needs of the App and used
through its public methods: :mod:`.core` (the :class:`App` itself: database, registrations,
listing, the embedded worker), :mod:`.starts` (starting workflows), :mod:`.lifecycle` (commands
that steer workflows from outside), :mod:`.handles` (what an App's
:class:`durably.WorkflowHandle` reads), :mod:`.results` (waiting for workflows to end) and
:mod:`.database` (what the parts need of the App's database). What App shares with
:class:`durably.Client` is in :mod:`durably.operations`.
"""

from durably.app.core import LIVE_WORKER_SECONDS, App

__all__ = ["LIVE_WORKER_SECONDS", "App"]

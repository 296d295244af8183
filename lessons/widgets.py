"""A panel of toggles that edits a ``Profile``, for learners in JupyterLab.

The panel never runs anything: the next plain cell reads ``panel.profile`` and runs the
experiment.  Headless (CI, ``make run``) nobody touches the panel, so that cell simply
uses the starting profile, and the notebook's result does not depend on a click.
"""

from __future__ import annotations

import os

import ipywidgets as w

from lab_project.lab import knobs
from lessons.profile import Profile, ProfileError
from lessons.server_kinds import SERVER_KINDS

__all__ = ["ProfilePanel", "panel"]


class ProfilePanel:
    """Toggles for every knob of a Profile; ``.profile`` is the current choice."""

    def __init__(self, start: Profile | None = None) -> None:
        start = start or Profile()
        self._start = start
        self._max_workers = max(2 * (os.cpu_count() or 1) + 1, start.workers)
        middleware = start.middleware if start.middleware in knobs.MIDDLEWARE_PRESETS else "default"
        self.controls: dict[str, w.ValueWidget] = {
            "server": w.Dropdown(options=list(SERVER_KINDS), value=start.server, description="server"),
            "workers": w.IntSlider(value=start.workers, min=1, max=self._max_workers, description="workers"),
            "threads": w.IntSlider(value=start.threads, min=1, max=16, description="threads"),
            "middleware": w.Dropdown(options=list(knobs.MIDDLEWARE_PRESETS), value=middleware, description="middleware"),
            "cache": w.Dropdown(options=list(knobs.CACHES), value=start.cache, description="cache"),
            "database": w.Dropdown(options=list(knobs.DATABASES), value=start.database, description="database"),
            "conn_max_age": w.IntText(value=start.conn_max_age or 0, description="CONN_MAX_AGE"),
            "db_pool": w.Checkbox(value=start.db_pool, description="native pool"),
            "db_pool_size": w.IntText(value=start.db_pool_size or 0, description="pool size (0=default)"),
            "conn_health_checks": w.Checkbox(value=start.conn_health_checks, description="health checks"),
            "statement_timeout_ms": w.IntText(value=start.statement_timeout_ms, description="stmt timeout ms"),
            "debug": w.Checkbox(value=start.debug, description="DEBUG"),
        }
        self._status = w.HTML()
        self.controls["server"].observe(lambda _change: self._fit_server(), names="value")
        for control in self.controls.values():
            control.observe(lambda _change: self._validate(), names="value")
        self._fit_server()
        self._validate()

    @property
    def profile(self) -> Profile:
        """The profile the toggles describe (raises ProfileError when they conflict)."""
        values = {name: c.value for name, c in self.controls.items()}
        if values["db_pool_size"] == 0:
            values["db_pool_size"] = None
        return self._start.replace(**values)

    def _fit_server(self) -> None:
        """Offer only what the chosen server kind takes: its worker limit, and threads
        only where they apply (lessons.server_kinds)."""
        kind = SERVER_KINDS[self.controls["server"].value]
        self.controls["workers"].max = kind.max_workers or self._max_workers
        self.controls["threads"].disabled = not kind.threads
        if not kind.threads:
            self.controls["threads"].value = 1

    def _validate(self) -> None:
        try:
            self._status.value = f"<code>{self.profile.describe()}</code>"
        except ProfileError as exc:
            self._status.value = f"<b style='color:#b00'>{exc}</b>"

    def widget(self) -> w.Widget:
        return w.VBox([w.HBox(list(self.controls.values())[i:i + 3]) for i in range(0, len(self.controls), 3)]
                      + [self._status])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget())


def panel(start: Profile | None = None) -> ProfilePanel:
    """Show toggles for ``start``; read the choice later with ``.profile``."""
    return ProfilePanel(start)

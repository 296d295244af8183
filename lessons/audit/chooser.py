"""The notebook's project chooser (notebook 12): a project path (default: the sample
project in ``tests/``), its settings module, interpreter and fixture.  It runs nothing;
headless, the cells after it audit the default.
"""

from __future__ import annotations

from pathlib import Path

from lessons.audit.api import SAMPLE_FIXTURE, SAMPLE_PROJECT

__all__ = ["ProjectChooser", "project_chooser"]


class ProjectChooser:
    """The project to audit: its directory (default the sample project), its settings
    module (blank: manage.py's default), interpreter (blank: this kernel's) and a fixture
    loaded into the fresh database (the sample's 40 products for the sample).  Each
    change is checked at once (``locate``: no child process); nothing runs here."""

    def __init__(self, path: str | Path = SAMPLE_PROJECT) -> None:
        import ipywidgets as w

        wide = w.Layout(width="80%")
        self._path = w.Text(value=str(path), description="project", layout=wide)
        self._settings = w.Text(value="", placeholder="manage.py's DJANGO_SETTINGS_MODULE",
                                description="settings", layout=wide)
        self._python = w.Text(value="", placeholder="this kernel's python", description="python", layout=wide)
        self._fixture = w.Text(value=self._sample_fixture(), placeholder="none: the tables start empty",
                               description="fixture", layout=wide)
        self._status = w.HTML()
        self._path.observe(lambda _change: self._path_changed(), names="value")
        for control in (self._settings, self._python, self._fixture):
            control.observe(lambda _change: self._check(), names="value")
        self.box = w.VBox([self._path, self._settings, self._python, self._fixture, self._status])
        self._check()

    @property
    def path(self) -> str:
        return self._path.value.strip()

    @property
    def settings(self) -> str | None:
        return self._settings.value.strip() or None

    @property
    def python(self) -> str | None:
        return self._python.value.strip() or None

    @property
    def fixture(self) -> Path | None:
        return Path(self._fixture.value.strip()).expanduser() if self._fixture.value.strip() else None

    def _sample_fixture(self) -> str:
        try:
            is_sample = Path(self.path).expanduser().resolve() == SAMPLE_PROJECT.resolve()
        except OSError:
            is_sample = False
        return str(SAMPLE_FIXTURE) if is_sample else ""

    def _path_changed(self) -> None:
        """The sample's fixture goes with the sample: another project starts without one."""
        if self._fixture.value.strip() in ("", str(SAMPLE_FIXTURE)):
            self._fixture.value = self._sample_fixture()
        self._check()

    def _check(self) -> None:
        import html

        from lessons.audit.project import AuditError, locate

        try:
            p = locate(self.path, settings=self.settings, python=self.python)
            if self.fixture is not None and not self.fixture.is_file():
                raise AuditError(f"The fixture {self.fixture} does not exist.")
        except AuditError as exc:
            self._status.value = f"<span style='color:crimson'>{html.escape(str(exc))}</span>"
            return
        sample = " (the lab's sample project)" if p.root == SAMPLE_PROJECT.resolve() else ""
        self._status.value = html.escape(f"{p.root}{sample}: settings {p.settings_module}, python {p.python}")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


def project_chooser(path: str | Path = SAMPLE_PROJECT) -> ProjectChooser:
    """The notebook's widget (see ``ProjectChooser``)."""
    return ProjectChooser(path)

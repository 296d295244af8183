"""``python -m lessons audit``: the lab's checks and measurements on the learner's project.

``project`` locates the project and reads it in child processes (never in this
interpreter); ``findings`` turns what it read into static findings, each with the number a
notebook measured for it; ``output`` prints them (terminal table, ``--json``, ``--html``);
``cli`` is the command.  The measured part (servers, load) is ``measure``.
"""

from lessons.audit.findings import Audit, Finding
from lessons.audit.project import AuditError, Project, locate

__all__ = ["Audit", "AuditError", "Finding", "Project", "locate"]

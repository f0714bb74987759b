"""One module per built-in task; each defines ``SPEC``, a :class:`~probes.tasks.generated.TaskSpec`.

A new module here that defines ``SPEC`` is registered as a task on import of :mod:`probes.tasks`.
"""

from __future__ import annotations

import sys

from probes.discovery import defined_in
from probes.tasks.generated import TaskSpec


def specs() -> list[TaskSpec]:
    """The ``SPEC`` of every module of this package, by module name."""
    return defined_in(sys.modules[__name__], "SPEC", TaskSpec)

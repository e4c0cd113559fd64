"""The probe wing: what the examined environment is, read without importing its packages.

``collect`` fills a ``Snapshot`` from metadata and the file system (``script.py`` runs the same reads under
another interpreter); ``system.py`` reads the CUDA libraries, the driver and the tools on PATH into
``facts.py``'s types. The runtime probes of ``--deep`` are in ``probe.deep`` and load only when it runs.
"""

from .collect import collect, interpreter, resolve_python
from .facts import SystemFacts
from .snapshot import Dist, Interpreter, InterpreterKind, LibDir, ProbeResult, ProbeStatus, Snapshot, normalise

__all__ = ["Dist", "Interpreter", "InterpreterKind", "LibDir", "ProbeResult", "ProbeStatus", "Snapshot",
           "SystemFacts", "collect", "interpreter", "normalise", "resolve_python"]

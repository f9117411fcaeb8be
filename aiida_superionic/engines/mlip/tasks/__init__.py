"""The tasks of the MLIP runner (:mod:`..runner`), one module each: ``task_NAME(atoms, settings, ctx)``
returns ``(status, message, results)``. No AiiDA import: this runs on the compute node. A task module
imports the shared pieces (:mod:`..common`, :mod:`..fileformat`) and, for the relaxation helpers,
:mod:`.relax`; never the runner."""

"""Pipeline steps: ``@limnos.step`` functions whose outputs are lake files, never computed twice.

:mod:`.step` (the decorator, calls, records), :mod:`.key` (cache keys from code
and arguments), :mod:`.formats` (storing returned data), :mod:`.stale` (outputs
whose code or inputs changed since).
"""

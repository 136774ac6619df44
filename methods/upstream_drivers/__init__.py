"""Driver scripts run by :mod:`methods.upstream` with an upstream environment's interpreter.

They are not imported by this project: each runs as ``<python> <driver> <workdir>`` with the
upstream checkout as working directory, reads ``<workdir>/settings.json`` and the upstream-format
inputs beside it, calls the upstream functions the way the upstream CLI or app does, and writes
``frames/000000.png, ...`` into the work dir.
"""

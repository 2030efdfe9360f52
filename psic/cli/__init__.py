"""The ``psic`` command line: a thin click layer over :mod:`psic.api`.

The entry point is :func:`psic.cli.main.main`. Nothing here imports torch at import
time, so ``psic --help``, ``psic info`` and ``psic models`` start quickly.
"""

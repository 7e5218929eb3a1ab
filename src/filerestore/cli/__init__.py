"""The ``filerestore`` command line: a thin adapter over :mod:`filerestore.restore`."""

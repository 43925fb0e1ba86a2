"""The ``clickstream`` command: one small module per group of commands (see :mod:`.main`)."""

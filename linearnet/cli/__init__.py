"""The ``linearnet`` command line."""

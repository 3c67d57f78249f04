"""Scale: exact least squares streamed from files larger than memory."""

def ordinary_run_end(buf: bytes, pos: int, /) -> int:
    """Where the run of ordinary markup at buf[pos] ends: _ORDINARY_RUN.match(buf, pos).end()."""

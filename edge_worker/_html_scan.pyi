def ordinary_run_end(buf: bytes, pos: int, stop: bytes | None = None, /) -> int:
    """Where the run of ordinary markup at buf[pos] ends: ordinary_run(stop).match(buf, pos).end()."""

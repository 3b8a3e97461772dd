def ordinary_run_end(buf: bytes, pos: int, stop: bytes | None = None, /) -> int:
    """Where the run of ordinary markup at buf[pos] ends: ordinary_run(stop).match(buf, pos).end()."""

def parse_start_tag(buf: bytes, pos: int, /) -> tuple[int, bytes, dict[str, str]] | int:
    """The start tag at buf[pos]: (end, name, attributes), 0 (not a tag) or -1 (incomplete), exactly as
    html_tags.parse_start_tag_in_python reads it."""

"""The compiled parts: the injector's fast path (edge_worker/_html_scan.c), packed profiles
(schemas/_packing.c) and event records (schemas/_event_records.c). Each has its Python specification
beside it, and tests hold the two equal.

Everything else is declared in pyproject.toml. Installing needs a C compiler and Python's headers,
as any package that compiles does (Debian: gcc, python3-dev).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "edge_worker._html_scan",
            sources=["edge_worker/_html_scan.c"],
            extra_compile_args=["-O2", "-Wall", "-Werror"],
        ),
        Extension(
            "schemas._packing",
            sources=["schemas/_packing.c"],
            extra_compile_args=["-O2", "-Wall", "-Werror"],
        ),
        Extension(
            "schemas._event_records",
            sources=["schemas/_event_records.c"],
            extra_compile_args=["-O2", "-Wall", "-Werror"],
        ),
    ]
)

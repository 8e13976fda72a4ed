"""Build of the compiled modules; everything else is in pyproject.toml.

``dlp.detect._candidates`` is the candidate scanner of the digit-based detectors
(dlp/detect/candidates.py is its Python face and pure-Python twin);
``dlp.smtp._wire`` the relay's whole-message byte tests (dlp/smtp/datareader.py
has their regular-expression twins).  It needs only
a C compiler and the Python headers; without them ``pip install`` stops with the
compiler's message rather than installing a gateway that scans at a fifth of its speed.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dlp.detect._candidates",
            sources=["dlp/detect/_candidates.c"],
            depends=["dlp/detect/_candidates_scan.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
        Extension(
            "dlp.smtp._wire",
            sources=["dlp/smtp/_wire.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
    ]
)

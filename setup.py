"""Build of the one compiled module; everything else is in pyproject.toml.

``dlp.detect._candidates`` is the candidate scanner of the digit-based detectors
(dlp/detect/candidates.py is its Python face and pure-Python twin).  It needs only
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
        )
    ]
)

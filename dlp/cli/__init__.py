"""The ``dlp`` command.

Each subcommand family lives in its own module with a ``register(group)``
function, so the families stay small and independent: ``scan``, ``domains``
(also ``allowlist``), ``serve``, ``log``, ``quarantine``, ``console``, ``incident``.
"""

from __future__ import annotations

import importlib

import click

from dlp import __version__

_FAMILIES = ("scan", "domains", "serve", "log", "quarantine", "console", "incident")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlp")
def main() -> None:
    """Outbound-mail DLP gateway: My Number scanning, lookalike domains, send log."""


for _name in _FAMILIES:
    importlib.import_module(f"dlp.cli.{_name}").register(main)

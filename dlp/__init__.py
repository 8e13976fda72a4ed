"""Outbound-mail DLP gateway for Japanese organisations."""

__version__ = "0.1.0"

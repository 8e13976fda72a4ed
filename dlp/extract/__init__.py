"""Attachment text extraction: one module per format family, picked by magic bytes.

Public entry point: ``dlp.extract.registry.extract(data, filename, location, budget)``.
"""

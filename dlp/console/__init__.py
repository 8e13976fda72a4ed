"""The review console (``dlp console``): its own process on the gateway's stores.

A regular package (it had no ``__init__.py``): setuptools' ``packages.find``
leaves namespace folders out of a built wheel, and the import contracts of
``make lint`` need it to be a module."""

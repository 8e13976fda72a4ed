"""The review console (``dlp console``): its own process on the gateway's stores.

A regular package like the others (it was a namespace folder): the import
contracts of ``make lint`` (import-linter) name it as a module."""

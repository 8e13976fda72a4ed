"""The hold queue: held mail, a store like the send log (issue 15).

* ``store.py``     the interface (``Quarantine``), the file store, ``HeldMessage``,
  claims, ``open_quarantine`` (picks the store from the settings);
* ``pg_store.py``  the same in PostgreSQL, beside the send log;
* ``decisions.py`` discard and expiry: claim, record in the send log, delete.

Releasing sends the message to the next hop, so it lives with sending
(``dlp.smtp.release``).  The gateway, the console, the CLI and retention
(``dlp.retention``) use this package; it imports nothing from ``smtp``,
``console`` or ``cli`` (checked by ``make lint``).
"""

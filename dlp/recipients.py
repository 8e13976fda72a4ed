"""Classify envelope recipients: own, partner, external, freemail or lookalike.

One ``RecipientClassifier`` lives in each gateway process.  It holds the
allowlist and the ``ProtectedSet`` built from it as one immutable snapshot and
swaps the snapshot whole on reload, so a transaction in flight always sees one
consistent list and no connection is dropped.  ``maybe_reload`` costs one
``stat`` (call it per SMTP transaction); ``reload`` is what SIGHUP calls.  A
broken file is refused with a logged message naming the file and line, and the
last good list stays in force.

Verdicts are cached per domain (LRU, per snapshot): a gateway sees the same few
hundred domains all day.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dlp.allowlist import Allowlist, AllowlistError, load_allowlist
from dlp.config import Settings
from dlp.detect.lookalike import LOOKALIKE, TRUSTED, ProtectedSet, check, domain_of
from dlp.freemail import FreemailSet
from dlp.model import DomainVerdict, Recipient, RecipientClass

log = logging.getLogger("dlp.recipients")

CACHE_SIZE = 65_536


def _build_snapshot(allowlist: Allowlist, builtin: bool, cache_size: int) -> _Snapshot:
    """Index the list with the cyclic garbage collector held off, then freeze.

    A 100,000-domain index is a few million objects.  Left to the collector,
    each full collection walks all of them with the GIL held: measured here,
    pauses of about one second for every thread, the event loop included,
    during the build and now and then afterwards.  The index has no cycles
    (reference counting frees an old one when it is swapped out), so it is
    built with collections paused and then moved out of the collector's way
    (``gc.freeze``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        snapshot = _Snapshot(allowlist, builtin, cache_size)
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return snapshot


@dataclass(frozen=True, slots=True)
class _Signature:
    """What ``stat`` says about the file; any change means "read it again"."""

    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> _Signature | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True, slots=True)
class _Class:
    domain: str
    klass: RecipientClass
    resembles: str | None
    technique: str | None
    entitled: bool
    verdict: DomainVerdict


def protected_set(allowlist: Allowlist, builtin: bool) -> ProtectedSet:
    # The free-mail domains (shipped and [freemail]) are real mail services: never
    # lookalikes of the built-in ones they sit next to (the allowlist's own and
    # partner domains stay protected from them).
    return ProtectedSet.build(
        own=allowlist.own,
        partners=allowlist.partners,
        builtin=builtin,
        external=allowlist.external,
        known=FreemailSet.build(allowlist.freemail).domains,
    )


class _Snapshot:
    def __init__(self, allowlist: Allowlist, builtin: bool, cache_size: int) -> None:
        self.allowlist = allowlist
        self.protected = protected_set(allowlist, builtin)
        self.loaded_at = time.time()
        own = frozenset(allowlist.own)
        entitled = allowlist.mynumber_partners
        ps = self.protected
        self.freemail = freemail = FreemailSet.build(allowlist.freemail)

        def classify_domain(domain: str) -> _Class:
            v = check(domain, ps)
            parents = _parents(v.domain)
            if v.verdict == TRUSTED:
                klass = (
                    RecipientClass.OWN if any(p in own for p in parents) else RecipientClass.PARTNER
                )
            elif v.verdict == LOOKALIKE:
                klass = RecipientClass.LOOKALIKE
            elif v.domain in freemail:
                klass = RecipientClass.FREEMAIL
                v = dataclasses.replace(v, freemail=True)
            else:
                klass = RecipientClass.EXTERNAL
            is_entitled = klass is RecipientClass.PARTNER and any(p in entitled for p in parents)
            return _Class(v.domain, klass, v.resembles, v.technique, is_entitled, v)

        self.classify_domain: Callable[[str], _Class] = lru_cache(maxsize=cache_size)(
            classify_domain
        )


def _parents(domain: str) -> list[str]:
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


class RecipientClassifier:
    """Allowlist + lookalike detector for the gateway; reloads itself."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        builtin: bool = True,
        allowlist: Allowlist | None = None,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        """With a ``path``, load it now (AllowlistError if it is broken: there is no
        last good list yet); with only ``allowlist``, classify against that."""
        self.path = Path(path) if path is not None else None
        self.builtin = builtin
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._refused: _Signature | None = None
        self.last_error: str = ""
        if self.path is not None and allowlist is None:
            self._signature = _Signature.of(self.path)
            allowlist = load_allowlist(self.path)
        else:
            self._signature = _Signature.of(self.path) if self.path else None
        self._snapshot = _build_snapshot(allowlist or Allowlist(), builtin, cache_size)

    @classmethod
    def from_settings(cls, settings: Settings) -> RecipientClassifier:
        return cls(settings.allowlist_path, builtin=settings.domains.builtin_protected)

    # -- queries -----------------------------------------------------------

    @property
    def allowlist(self) -> Allowlist:
        return self._snapshot.allowlist

    @property
    def protected(self) -> ProtectedSet:
        return self._snapshot.protected

    @property
    def loaded_at(self) -> float:
        return self._snapshot.loaded_at

    def check(self, domain: str) -> DomainVerdict:
        return self._snapshot.classify_domain(_cache_key(domain)).verdict

    def classify(self, address: str) -> Recipient:
        c = self._snapshot.classify_domain(_cache_key(domain_of(address)))
        return Recipient(
            address=address,
            domain=c.domain,
            klass=c.klass,
            resembles=c.resembles,
            technique=c.technique,
            mynumber_entitled=c.entitled,
            explanation=c.verdict.explanation,
            explanation_ja=c.verdict.explanation_ja,
        )

    # -- reloading ---------------------------------------------------------

    def maybe_reload(self, *, background: bool = False) -> None:
        """Reload when the file changed (mtime, size or inode).  One ``stat``.

        ``background=True`` (the gateway's event loop) builds the new index in
        a thread and swaps it in whole when done: 100,000 domains take seconds
        to index, and the loop must keep answering meanwhile; until then the
        last list stays in force."""
        if self.path is None:
            return
        sig = _Signature.of(self.path)
        if sig == self._signature or (sig is not None and sig == self._refused):
            return
        if sig is None:
            if self._refused is None and self._signature is not None:
                log.error(
                    "allowlist %s has disappeared; keeping the last good list (loaded %s)",
                    self.path,
                    _when(self.loaded_at),
                )
            self._signature = None
            return
        if background:
            self.reload_in_background()
            return
        self.reload()

    def reload_in_background(self) -> threading.Thread | None:
        """Start ``reload`` in a thread unless one is already running (never
        waits for a running reload: its own lock, not the reload's)."""
        with self._worker_lock:
            running = self._worker
            if running is not None and running.is_alive():
                return None
            worker = threading.Thread(target=self.reload, name="allowlist-reload", daemon=True)
            self._worker = worker
        worker.start()
        return worker

    def reload(self) -> bool:
        """Read the file again.  False (and the old list stays) when it is broken."""
        if self.path is None:
            return False
        with self._lock:
            sig = _Signature.of(self.path)
            try:
                allowlist = load_allowlist(self.path)
            except AllowlistError as exc:
                self._refused = sig
                self.last_error = str(exc)
                log.error(
                    "allowlist refused: %s; keeping the last good list (loaded %s: %d own, "
                    "%d partner domains)",
                    exc,
                    _when(self.loaded_at),
                    len(self.allowlist.own),
                    len(self.allowlist.partners),
                )
                return False
            snapshot = _build_snapshot(allowlist, self.builtin, self._cache_size)
            self._snapshot = snapshot
            self._signature = sig
            self._refused = None
            self.last_error = ""
        log.info(
            "allowlist %s loaded: %d own, %d partner (%d entitled to My Numbers), %d external",
            self.path,
            len(allowlist.own),
            len(allowlist.partners),
            len(allowlist.mynumber_partners),
            len(allowlist.external),
        )
        return True


def _cache_key(domain: str) -> str:
    # Cheap canonicalisation so "Gmail.COM" and "gmail.com." share a cache slot;
    # the detector does the full normalisation.
    return domain.strip().rstrip(".").lower()


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))

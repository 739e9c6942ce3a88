"""Serving TLS that follows its files: an SSLContext rebuilt when the certificate or key changes.

Holds ``TlsReloader``: every new connection asks it for a context; it compares the files'
(inode, mtime, size) with the ones it loaded and rebuilds the context when they differ,
so a rotated certificate (a Secret update, ``oam-rollout certs`` again) is served to the
next connection without a restart. A pair that does not load (say, caught between the
key and the certificate rename) keeps the previous context until a good pair appears.
It must not generate certificates (webhook.admission.certs does) and must not import Flask.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path

log = logging.getLogger("oam_rollout.tls")

Fingerprint = tuple[tuple[int, int, int], tuple[int, int, int]]


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def build_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for the pair; ssl.SSLError / OSError if it does not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    # The apiserver speaks HTTP/1.1 to webhooks; say so rather than leave it implied.
    context.set_alpn_protocols(["http/1.1"])
    return context


class TlsReloader:
    """The current SSLContext for a certificate/key pair on disk (thread-safe)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = Path(cert)
        self.key = Path(key)
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._loaded: Fingerprint | None = None
        self._failed: Fingerprint | None = None
        self.reloads = 0

    @property
    def loaded(self) -> bool:
        return self._context is not None

    def context(self) -> ssl.SSLContext:
        """The context for the files as they are now; raises only if no pair ever loaded."""
        try:
            seen: Fingerprint | None = (_stamp(self.cert), _stamp(self.key))
        except OSError as exc:
            # Files briefly missing during a rotation: keep serving what we have.
            if self._context is None:
                raise ssl.SSLError(f"TLS material not readable: {exc}") from exc
            seen = None
        if seen is None or seen == self._loaded or (seen == self._failed and self._context):
            assert self._context is not None
            return self._context
        with self._lock:
            if seen != self._loaded:
                self._reload(seen)
        if self._context is None:
            raise ssl.SSLError(f"TLS material {self.cert}, {self.key} does not load")
        return self._context

    def _reload(self, seen: Fingerprint) -> None:
        try:
            context = build_context(self.cert, self.key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            if seen != self._failed:
                log.warning(
                    "TLS files %s, %s did not load (%s); keeping the previous ones",
                    self.cert,
                    self.key,
                    exc,
                )
            self._failed = seen
            return
        first = self._context is None
        self._context, self._loaded, self._failed = context, seen, None
        if not first:
            self.reloads += 1
            log.info("TLS certificate %s reloaded", self.cert)

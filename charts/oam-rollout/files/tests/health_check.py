"""The `helm test` check of a release: GET each health endpoint, exit 1 if one fails.

Runs as the Pod of templates/tests/health.yaml, in the chart's own image, so it uses the
standard library only. CHECKS is a JSON list of URLs. CA_BUNDLE, when set, is the PEM CA
the webhook's certificate must chain to (the CA the API server trusts), and the check
also proves the certificate is valid for the Service's name; without it (a Secret with no
ca.crt) the webhook is reached without verification, and the output says so.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

ATTEMPTS = 3
PAUSE_SECONDS = 2.0
TIMEOUT_SECONDS = 10.0


def _context(url: str, ca_bundle: str) -> ssl.SSLContext | None:
    if not url.startswith("https://"):
        return None
    if ca_bundle.strip():
        return ssl.create_default_context(cadata=ca_bundle)
    # No CA to check against: the health of the endpoint is still worth knowing.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _get(url: str, context: ssl.SSLContext | None) -> str | None:
    """None when the endpoint answers 2xx, else why not (after a few attempts: a pod
    restarted a moment ago may need a second to get ready)."""
    problem = "not tried"
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(PAUSE_SECONDS)
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS, context=context) as reply:
                if 200 <= reply.status < 300:
                    return None
                problem = f"HTTP {reply.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            problem = str(getattr(exc, "reason", exc))
    return problem


def main() -> int:
    urls = json.loads(os.environ.get("CHECKS", "[]"))
    ca_bundle = os.environ.get("CA_BUNDLE", "")
    failed = 0
    for url in urls:
        context = _context(url, ca_bundle)
        problem = _get(url, context)
        note = " (certificate not verified: no CA)" if context and not ca_bundle.strip() else ""
        print(f"{url}: {'ok' if problem is None else 'FAILED: ' + problem}{note}", flush=True)
        failed += problem is not None
    if not urls:
        print("nothing to check", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

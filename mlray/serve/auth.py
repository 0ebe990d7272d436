"""API keys for ``/v1/*``: bearer tokens from an environment variable or a mounted secret file.

Keys are kept only as SHA-256 digests and compared in constant time; neither
a key nor its digest is ever logged. With no key configured the service
refuses to start unless Serve listens on loopback only (a local demo), and
says so loudly when it does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from mlray.config.inference import AuthSection

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
BEARER = "bearer "


class AuthConfigError(RuntimeError):
    """No API keys, and the service is reachable from beyond this machine."""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class ApiKeys:
    digests: tuple[bytes, ...] = field(repr=False)
    sources: tuple[str, ...]

    @property
    def open(self) -> bool:
        return not self.digests

    @classmethod
    def load(cls, section: AuthSection, environ: dict[str, str] | None = None) -> ApiKeys:
        environ = dict(os.environ) if environ is None else environ
        keys: list[str] = []
        sources: list[str] = []
        from_env = [k.strip() for k in environ.get(section.api_keys_env, "").split(",") if k.strip()]
        if from_env:
            keys += from_env
            sources.append(f"${section.api_keys_env}")
        if section.api_keys_file and Path(section.api_keys_file).is_file():
            lines = Path(section.api_keys_file).read_text().splitlines()
            from_file = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
            if from_file:
                keys += from_file
                sources.append(section.api_keys_file)
        return cls(tuple(_digest(k) for k in keys), tuple(sources))

    def accepts(self, authorization: str | None) -> bool:
        """True for ``Authorization: Bearer <a configured key>`` (or for anything when open)."""
        if self.open:
            return True
        if not authorization or not authorization.lower().startswith(BEARER):
            return False
        offered = _digest(authorization[len(BEARER):].strip())
        # Check every key: the time taken must not depend on which one matched.
        matches = [hmac.compare_digest(offered, digest) for digest in self.digests]
        return any(matches)

    def require_keys_unless_loopback(self, http_host: str | None) -> None:
        """Raise unless keys exist or Serve is loopback-only; announce an open loopback demo."""
        if not self.open:
            log.info("API key auth on: %d key(s) from %s", len(self.digests), ", ".join(self.sources))
            return
        if http_host in LOOPBACK_HOSTS:
            log.warning(
                "NO API KEYS configured: /v1/* is open. Allowed only because Serve listens on %s "
                "(loopback demo); configure auth.api_keys_env or auth.api_keys_file before exposing it.",
                http_host,
            )
            return
        raise AuthConfigError(
            f"no API keys found (auth.api_keys_env, auth.api_keys_file) and Serve listens on "
            f"{http_host!r}, not loopback: refusing to serve /v1/* without authentication"
        )


def serve_http_host() -> str | None:
    """The host Serve's HTTP proxies bind (asked from inside a replica); None if unknown."""
    try:
        from ray.serve.context import _get_global_client

        return _get_global_client().http_config.host
    except Exception:  # noqa: BLE001 - unknown means "not provably loopback"
        log.exception("could not read Serve's HTTP options")
        return None

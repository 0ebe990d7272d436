"""API keys in two scopes, and which scope each route needs.

* **prediction keys** (``auth.api_keys_env`` / ``auth.api_keys_file``): every route except the
  health probes (``/healthz``, ``/readyz``): predictions, model and rollout views, the API docs.
* **admin keys** (``auth.admin_keys_env`` / ``auth.admin_keys_file``): additionally the routes that
  change something (``PUT /v1/rollout``). A prediction key there gets 403; with no admin key
  configured those routes are refused to everyone.

Keys come from an environment variable (comma-separated) or a mounted secret file (one per line).
They are kept only as SHA-256 digests and compared in constant time; logs name a caller by
``key_id``, a different hash of the key that cannot be turned back into it. With no key at all the
service refuses to start unless Serve listens on loopback only (a local demo), and says so loudly
when it does; everything is open then.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from mlray import ray_private
from mlray.config.inference import AuthSection

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
BEARER = "bearer "
OPEN_ROUTES = frozenset({"/healthz", "/readyz"})
READ_METHODS = frozenset({"GET", "HEAD"})
PREDICTION_WRITES = frozenset({("POST", "/v1/predict")})
KEY_ID_CONTEXT = b"mlray api key id\x00"


class AuthConfigError(RuntimeError):
    """No API keys, and the service is reachable from beyond this machine."""


class AccessDenied(Exception):
    """401 (no valid key) or 403 (a key without the scope the route needs), with the body's ``detail``."""

    def __init__(self, status_code: int, detail: str):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else {}


class KeyScope(Enum):
    PREDICT = "prediction"
    ADMIN = "admin"


def required_scope(method: str, route_path: str) -> KeyScope | None:
    """The scope a request needs, by the route path *without* any root path or route prefix.

    Deny by default: anything not listed as open or as a prediction route, including routes
    added later and unknown paths, needs a key, and anything that is not a read needs an admin key.
    """
    if method in READ_METHODS:
        return None if route_path in OPEN_ROUTES else KeyScope.PREDICT
    return KeyScope.PREDICT if (method, route_path) in PREDICTION_WRITES else KeyScope.ADMIN


def key_id(key: str) -> str:
    """A short public name for a key, for logs (neither the key nor the digest it is checked against)."""
    return "key-" + hashlib.sha256(KEY_ID_CONTEXT + key.encode()).hexdigest()[:12]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class KeySet:
    """The keys of one scope: digests to compare against, ids to log."""

    digests: tuple[bytes, ...] = field(repr=False)
    ids: tuple[str, ...] = field(repr=False)
    sources: tuple[str, ...]

    @classmethod
    def load(cls, env_name: str, file: str | None, environ: Mapping[str, str]) -> KeySet:
        keys: list[str] = []
        sources: list[str] = []
        from_env = [k.strip() for k in environ.get(env_name, "").split(",") if k.strip()]
        if from_env:
            keys += from_env
            sources.append(f"${env_name}")
        if file and Path(file).is_file():
            lines = Path(file).read_text().splitlines()
            from_file = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
            if from_file:
                keys += from_file
                sources.append(file)
        return cls(tuple(_digest(k) for k in keys), tuple(key_id(k) for k in keys), tuple(sources))

    def match(self, offered: bytes) -> str | None:
        """The id of the key whose digest is ``offered``, comparing with every key (time independent of which)."""
        found = None
        for digest, ident in zip(self.digests, self.ids, strict=True):
            if hmac.compare_digest(offered, digest):
                found = ident
        return found

    def describe(self) -> str:
        return f"{len(self.digests)} key(s) from {', '.join(self.sources)}" if self.digests else "none"


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: a key id (never the key) and whether it may change things."""

    key_id: str
    admin: bool


ANONYMOUS = Caller("anonymous (no keys configured)", admin=True)


@dataclass(frozen=True)
class ApiKeys:
    predict: KeySet
    admin: KeySet

    @property
    def open(self) -> bool:
        return not self.predict.digests and not self.admin.digests

    @classmethod
    def load(cls, section: AuthSection, environ: Mapping[str, str] | None = None) -> ApiKeys:
        environ = os.environ if environ is None else environ
        return cls(
            KeySet.load(section.api_keys_env, section.api_keys_file, environ),
            KeySet.load(section.admin_keys_env, section.admin_keys_file, environ),
        )

    def identify(self, authorization: str | None) -> Caller | None:
        """The caller behind ``Authorization: Bearer <key>``; None without a configured key (anyone when open)."""
        if self.open:
            return ANONYMOUS
        if not authorization or not authorization.lower().startswith(BEARER):
            return None
        offered = _digest(authorization[len(BEARER):].strip())
        # Both sets are always compared, so the time taken does not tell a key's scope.
        admin, predict = self.admin.match(offered), self.predict.match(offered)
        if admin is not None:
            return Caller(admin, admin=True)
        return Caller(predict, admin=False) if predict is not None else None

    def authorize(self, authorization: str | None, scope: KeyScope) -> Caller:
        """The caller, if its key has ``scope``; else AccessDenied (401 without a valid key, 403 without the scope)."""
        caller = self.identify(authorization)
        if caller is None:
            raise AccessDenied(401, "missing or invalid API key")
        if scope is KeyScope.ADMIN and not caller.admin:
            if not self.admin.digests:
                raise AccessDenied(403, "changes are disabled: no admin keys are configured "
                                        "(auth.admin_keys_env, auth.admin_keys_file)")
            raise AccessDenied(403, "this route needs an admin key; the key given is a prediction key")
        return caller

    def require_keys_unless_loopback(self, http_host: str | None) -> None:
        """Raise unless keys exist or Serve is loopback-only; announce an open demo or disabled admin routes."""
        if not self.open:
            log.info("API key auth on: prediction keys: %s; admin keys: %s", self.predict.describe(), self.admin.describe())
            if not self.admin.digests:
                log.warning("no admin keys (auth.admin_keys_env, auth.admin_keys_file): PUT /v1/rollout is refused")
            return
        if http_host in LOOPBACK_HOSTS:
            log.warning(
                "NO API KEYS configured: every route is open, rollout changes included. Allowed only because "
                "Serve listens on %s (loopback demo); configure auth.api_keys_env / auth.api_keys_file and "
                "auth.admin_keys_env / auth.admin_keys_file before exposing it.",
                http_host,
            )
            return
        raise AuthConfigError(
            f"no API keys found (auth.api_keys_env, auth.api_keys_file, auth.admin_keys_env, auth.admin_keys_file) "
            f"and Serve listens on {http_host!r}, not loopback: refusing to serve without authentication"
        )


def serve_http_host() -> str | None:
    """The host Serve's HTTP proxies bind (asked from inside a replica); None if unknown."""
    try:
        return ray_private.serve_http_host()
    except Exception:  # noqa: BLE001 - unknown means "not provably loopback"
        log.exception("could not read Serve's HTTP options")
        return None

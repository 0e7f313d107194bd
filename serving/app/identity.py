"""Who is calling: an Identity (subject, role, source) for every request.

Two ways in, chosen by configuration:

- Tokens (locally, and anywhere without a proxy that signs identities): a reviewer's or
  operator's token, sent as `Authorization: Bearer <token>`, is looked up by its hash in
  the database (serving/feedback/tokens.py). No header: the anonymous role.
- Identity-Aware Proxy (on GKE): IAP signs each request it lets through with an ES256
  JWT in `x-goog-iap-jwt-assertion`. The app checks its signature against Google's
  public keys, its issuer and its audience (the backend service), and maps the e-mail
  it carries to a role from configuration. A request without a valid assertion did not
  come through IAP and is refused.

Every sample records a source. For a token or an IAP user it is the subject. For an
anonymous client it is a keyed hash (HMAC-SHA256) of its address: it counts one client
without storing its address, and without the key it cannot be reversed by hashing all
four billion IPv4 addresses. IPv6 addresses count by their /64, which one client holds.
The address is the TCP peer, or, when the peer is a configured trusted proxy, the entry
that proxy appended to X-Forwarded-For (`proxy_hops` from the right): the entries to
the left of it are whatever the client chose to send.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import json
import threading
import time

from serving.feedback import tokens
from store.database import Database

IAP_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
IAP_CERTS_URL = "https://www.gstatic.com/iap/verify/public_key"
CERTS_TTL_S = 3600.0


class UnauthenticatedError(Exception):
    """No valid credential where one was given or is required (HTTP 401)."""


class KeysUnavailableError(RuntimeError):
    """IAP's public keys cannot be fetched now, so no assertion can be checked (HTTP 503)."""


@dataclasses.dataclass(frozen=True)
class Identity:
    subject: str | None  # None: anonymous
    role: str
    source: str


@dataclasses.dataclass(frozen=True)
class IapSettings:
    audience: str  # /projects/NUMBER/global/backendServices/ID
    roles: dict[str, str]  # e-mail -> reviewer | operator; everyone else is anyone
    certs_url: str = IAP_CERTS_URL

    @staticmethod
    def parse_roles(text: str) -> dict[str, str]:
        """{"reviewer": [emails], "operator": [emails]} to e-mail -> role."""
        document = json.loads(text or "{}")
        roles: dict[str, str] = {}
        for role in tokens.ISSUED_ROLES:  # operator last: it wins when both list a person
            for email in document.get(role, []):
                roles[email.lower()] = role
        unknown = set(document) - set(tokens.ISSUED_ROLES)
        if unknown:
            raise ValueError(f"unknown roles in the IAP role map: {', '.join(sorted(unknown))}")
        return roles


class Identifier:
    def __init__(
        self,
        db: Database,
        source_key: bytes,
        iap: IapSettings | None = None,
        trusted_proxies: tuple[str, ...] = (),
        proxy_hops: int = 1,
    ) -> None:
        self.db, self.key, self.iap = db, source_key, iap
        self.proxies = tuple(ipaddress.ip_network(p) for p in trusted_proxies)
        self.hops = proxy_hops
        self._certs: tuple[float, dict] | None = None
        self._certs_lock = threading.Lock()

    def blocks(self, headers) -> bool:
        """Whether identify() may wait on the store or the network for these headers."""
        return self.iap is not None or "Authorization" in headers

    def identify(self, headers, peer: str | None) -> Identity:
        """May block (a token lookup, a key fetch; see blocks()): call it off the event
        loop then."""
        if self.iap is not None:
            return self._iap(headers.get(IAP_HEADER))
        authorization = headers.get("Authorization")
        if authorization is None:
            return Identity(None, tokens.ANYONE, self.anonymous_source(headers, peer))
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("send the token as 'Authorization: Bearer <token>'")
        found = tokens.lookup(self.db, token.strip())
        if found is None:
            raise UnauthenticatedError("the token is unknown or revoked")
        name, role = found
        return Identity(name, role, f"token:{name}")

    def client_address(self, headers, peer: str | None) -> str:
        if peer is None:
            return "unknown"
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return peer  # a Unix socket path: one local client
        if any(address in network for network in self.proxies):
            forwarded = [p.strip() for p in headers.get("X-Forwarded-For", "").split(",")]
            forwarded = [p for p in forwarded if p]
            if len(forwarded) >= self.hops:
                return forwarded[-self.hops]
        return peer

    def anonymous_source(self, headers, peer: str | None) -> str:
        text = self.client_address(headers, peer)
        try:
            address = ipaddress.ip_address(text)
            if address.version == 6:
                text = str(ipaddress.ip_network(f"{address}/64", strict=False))
        except ValueError:
            pass
        digest = hmac.new(self.key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"client:{digest[:20]}"

    def _iap(self, assertion: str | None) -> Identity:
        from google.auth import exceptions, jwt

        if not assertion:
            raise UnauthenticatedError("this app is reached through Identity-Aware Proxy only")
        try:
            claims = jwt.decode(
                assertion,
                certs=self._iap_certs(),
                audience=self.iap.audience,
                clock_skew_in_seconds=30,
            )
        except (ValueError, exceptions.GoogleAuthError) as err:
            raise UnauthenticatedError(f"the IAP assertion is not valid: {err}") from None
        if claims.get("iss") != IAP_ISSUER or not claims.get("email"):
            raise UnauthenticatedError("the IAP assertion has the wrong issuer or no e-mail")
        email = str(claims["email"]).lower()
        return Identity(email, self.iap.roles.get(email, tokens.ANYONE), f"iap:{email}")

    def _iap_certs(self) -> dict:
        """Google's IAP public keys (key id -> PEM), fetched at most once an hour."""
        with self._certs_lock:
            if self._certs is None or time.monotonic() - self._certs[0] > CERTS_TTL_S:
                import google.auth.transport.requests
                from google.auth import exceptions

                request = google.auth.transport.requests.Request()
                try:
                    response = request(self.iap.certs_url, method="GET", timeout=10)
                except exceptions.TransportError as err:
                    raise KeysUnavailableError(f"cannot fetch IAP's keys: {err}") from None
                if response.status != 200:
                    raise KeysUnavailableError(f"cannot fetch IAP's keys: HTTP {response.status}")
                self._certs = (time.monotonic(), json.loads(response.data))
            return self._certs[1]

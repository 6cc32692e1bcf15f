"""SSRF-safe outbound HTTP client for provider APIs and integrator callbacks.

Every request resolves the host first and refuses private, loopback, link-local, reserved,
multicast and unspecified addresses unless they fall inside ``settings.OUTBOUND_ALLOWED_NETWORKS``.
The connection is then made to the address that was checked (no second DNS lookup, so a
rebinding DNS answer cannot swap in an internal address), with TLS still verified against the
host name. Redirects are re-checked hop by hop; credentials are dropped when a redirect
leaves the original origin.
"""

from __future__ import annotations

import base64
import functools
import http.client
import ipaddress
import json as jsonlib
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundError(Exception):
    """Base class. ``permanent``: retrying the same request cannot succeed."""

    permanent = False


class OutboundBlocked(OutboundError):
    """The destination is not allowed (internal address, bad scheme, too many redirects)."""

    permanent = True


class OutboundConnectionError(OutboundError):
    """DNS failure, refused connection, TLS failure or timeout: worth retrying later."""

    permanent = False


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str = ""
    history: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return jsonlib.loads(self.body.decode("utf-8"))

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The client TLS context for every outbound connection (HTTPS, SMTP, IMAP): the system
    trust store with host name checking. Made once per process, and shared, as SSLContext is
    meant to be: `ssl.create_default_context()` loads the whole trust store and cost 25.7 ms
    of CPU each time; it was called for every message sent and every webhook delivered."""
    return ssl.create_default_context()


def _allowed_networks() -> list[IPNetwork]:
    from django.conf import settings

    return list(getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", []) or [])


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address hidden in mapped, 6to4 and NAT64 IPv6 forms (checked like any IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public_address(ip: IPAddress) -> bool:
    ip = _unwrap(ip)
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def address_allowed(ip: IPAddress, allowed: Iterable[IPNetwork]) -> bool:
    candidates = {ip, _unwrap(ip)}
    for net in allowed:
        for candidate in candidates:
            if candidate.version == net.version and candidate in net:
                return True
    return is_public_address(ip)


def resolve_allowed(host: str, port: int, allowed: Iterable[IPNetwork]) -> IPAddress:
    """Resolve ``host`` and return the first allowed address, or raise OutboundBlocked.

    If ANY resolved address is refused the whole host is refused: an attacker-controlled name
    that answers with one public and one internal address must not get a lucky pick.
    """
    allowed = list(allowed)
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses: list[IPAddress] = [literal]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OutboundConnectionError(f"cannot resolve {host}: {exc}") from exc
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(info[4][0].split("%")[0])
            if ip not in addresses:
                addresses.append(ip)
    if not addresses:
        raise OutboundConnectionError(f"{host} has no address")
    for ip in addresses:
        if not address_allowed(ip, allowed):
            raise OutboundBlocked(f"refusing to connect to {host} ({ip}): not a public address")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pinned_ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._pinned_ip, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._pinned_ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._pinned_ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    json: Any = None,
    form: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    basic_auth: tuple[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_redirects: int = 3,
    allowed_networks: Iterable[IPNetwork] | None = None,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    ssl_context: ssl.SSLContext | None = None,
) -> HttpResponse:
    """Send one HTTP request and return status, headers and body. Never raises on HTTP status.

    ``ssl_context`` defaults to the system trust store with host name checking."""
    if sum(x is not None for x in (body, json, form)) > 1:
        raise ValueError("pass only one of body, json, form")
    send_headers: dict[str, str] = {"User-Agent": "cxplatform/1.0", "Accept": "application/json"}
    if json is not None:
        body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        send_headers["Content-Type"] = "application/json"
    elif form is not None:
        body = urlencode(list(form.items()) if isinstance(form, Mapping) else list(form)).encode("ascii")
        send_headers["Content-Type"] = "application/x-www-form-urlencoded"
    if basic_auth is not None:
        token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode("ascii")
        send_headers["Authorization"] = f"Basic {token}"
    send_headers.update(headers or {})
    networks = list(_allowed_networks() if allowed_networks is None else allowed_networks)

    history: list[str] = []
    method = method.upper()
    origin = _origin(url)
    for _hop in range(max_redirects + 1):
        response = _request_once(method, url, send_headers, body, timeout, networks, max_response_bytes,
                                 ssl_context or tls_context())
        response.history = list(history)
        if response.status not in REDIRECT_STATUSES or "location" not in response.headers:
            return response
        history.append(url)
        url = urljoin(url, response.headers["location"])
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, body = "GET", None
            send_headers.pop("Content-Type", None)
        if _origin(url) != origin:
            send_headers = {k: v for k, v in send_headers.items() if k.lower() not in ("authorization", "cookie")}
    raise OutboundBlocked(f"too many redirects (more than {max_redirects})")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _request_once(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    networks: list[IPNetwork],
    max_response_bytes: int,
    context: ssl.SSLContext,
) -> HttpResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutboundBlocked(f"refusing scheme {parts.scheme!r}")
    if not parts.hostname:
        raise OutboundBlocked(f"no host in URL {url!r}")
    if parts.username or parts.password:
        raise OutboundBlocked("credentials in the URL are not allowed")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutboundBlocked(f"invalid port in {url!r}") from exc
    ip = resolve_allowed(host, port, networks)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = _PinnedHTTPSConnection(host, port, str(ip), timeout, context)
    else:
        conn = _PinnedHTTPConnection(host, port, str(ip), timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read(max_response_bytes + 1)
        if len(data) > max_response_bytes:
            raise OutboundBlocked(f"response larger than {max_response_bytes} bytes")
        return HttpResponse(
            status=resp.status,
            headers={k.lower(): v for k, v in resp.getheaders()},
            body=data,
            url=url,
        )
    except TimeoutError as exc:
        raise OutboundConnectionError(f"timed out talking to {host}") from exc
    except ssl.SSLError as exc:
        # Includes certificate / host name mismatches: retryable (a certificate may be mid-rotation);
        # the reason reaches the agent after the last attempt.
        raise OutboundConnectionError(f"TLS with {host} failed: {exc}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise OutboundConnectionError(f"connection to {host} failed: {exc}") from exc
    finally:
        conn.close()

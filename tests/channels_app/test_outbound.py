from __future__ import annotations

import ipaddress
import socket

import pytest

from channels_app import outbound
from tests.channels_app.conftest import ProviderServer

LOOPBACK_ONLY = [ipaddress.ip_network("127.0.0.0/8")]


def test_request_returns_status_headers_and_body(provider_server):
    provider_server.respond(201, json_body={"ok": True}, headers={"Content-Type": "application/json", "X-Id": "7"})

    response = outbound.request("POST", provider_server.url + "/a?b=1", json={"x": 1}, headers={"X-Test": "yes"})

    assert (response.status, response.json(), response.headers["x-id"]) == (201, {"ok": True}, "7")
    assert provider_server.last.method == "POST"
    assert provider_server.last.path == "/a?b=1"
    assert provider_server.last.body == b'{"x":1}'
    assert provider_server.last.headers["content-type"] == "application/json"
    assert provider_server.last.headers["x-test"] == "yes"


def test_form_and_basic_auth_are_encoded(provider_server):
    outbound.request("POST", provider_server.url + "/f", form={"To": "+62 811", "Body": "a&b"}, basic_auth=("AC1", "tok"))

    assert provider_server.last.body == b"To=%2B62+811&Body=a%26b"
    assert provider_server.last.headers["authorization"] == "Basic QUMxOnRvaw=="
    assert provider_server.last.headers["content-type"] == "application/x-www-form-urlencoded"


def test_http_error_status_is_returned_not_raised(provider_server):
    provider_server.respond(503, body=b"busy", headers={})

    response = outbound.request("GET", provider_server.url + "/")

    assert (response.status, response.body, response.ok) == (503, b"busy", False)


def test_loopback_is_refused_when_not_in_allowed_networks(provider_server):
    with pytest.raises(outbound.OutboundBlocked, match="not a public address"):
        outbound.request("GET", provider_server.url + "/", allowed_networks=[])
    assert provider_server.requests == []


def test_settings_allowed_networks_are_used(provider_server, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(outbound.OutboundBlocked):
        outbound.request("GET", provider_server.url + "/")
    settings.OUTBOUND_ALLOWED_NETWORKS = LOOPBACK_ONLY
    assert outbound.request("GET", provider_server.url + "/").status == 200


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
     "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
     "2002:a00:1::", "64:ff9b::a9fe:a9fe"],
)
def test_internal_addresses_are_not_public(address):
    assert outbound.is_public_address(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "157.240.1.1", "64:ff9b::808:808"])
def test_public_addresses_are_public(address):
    assert outbound.is_public_address(ipaddress.ip_address(address)) is True


def test_mapped_ipv6_loopback_is_allowed_only_via_its_ipv4_network():
    ip = ipaddress.ip_address("::ffff:127.0.0.1")
    assert outbound.address_allowed(ip, LOOPBACK_ONLY) is True
    assert outbound.address_allowed(ip, []) is False


def test_host_resolving_to_any_internal_address_is_refused(monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(outbound.OutboundBlocked, match=r"10\.1\.2\.3"):
        outbound.request("GET", "https://api.example.test/x", allowed_networks=[])


def test_connection_is_pinned_to_the_checked_address(monkeypatch, provider_server):
    """A second DNS lookup at connect time (rebinding) must not happen."""
    port = int(provider_server.url.rsplit(":", 1)[1])
    calls = []

    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, p, *args, **kwargs):
        if host == "127.0.0.1":  # the pinned connect of an IP literal
            return real_getaddrinfo(host, p, *args, **kwargs)
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    response = outbound.request("GET", f"http://provider.test:{port}/pinned", allowed_networks=LOOPBACK_ONLY)

    assert response.status == 200
    assert calls == ["provider.test"]
    assert provider_server.last.headers["host"] == f"provider.test:{port}"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1/", "ftp://example.com/"])
def test_non_http_schemes_are_refused(url):
    with pytest.raises(outbound.OutboundBlocked, match="scheme"):
        outbound.request("GET", url)


def test_credentials_in_url_are_refused(provider_server):
    with pytest.raises(outbound.OutboundBlocked, match="credentials"):
        outbound.request("GET", provider_server.url.replace("http://", "http://u:p@") + "/")


def test_redirect_to_refused_address_is_not_followed(provider_server):
    provider_server.respond(302, body=b"", headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    with pytest.raises(outbound.OutboundBlocked, match="169.254.169.254"):
        outbound.request("GET", provider_server.url + "/start")
    assert [r.path for r in provider_server.requests] == ["/start"]


def test_redirect_within_allowed_space_is_followed_and_post_becomes_get(provider_server):
    provider_server.respond(303, body=b"", headers={"Location": "/next"})
    provider_server.respond(200, json_body={"done": 1})

    response = outbound.request("POST", provider_server.url + "/start", json={"a": 1})

    assert response.json() == {"done": 1}
    assert [(r.method, r.path) for r in provider_server.requests] == [("POST", "/start"), ("GET", "/next")]
    assert response.history == [provider_server.url + "/start"]


def test_redirect_loop_is_stopped(provider_server):
    for _ in range(5):
        provider_server.respond(302, body=b"", headers={"Location": "/again"})
    with pytest.raises(outbound.OutboundBlocked, match="too many redirects"):
        outbound.request("GET", provider_server.url + "/", max_redirects=2)
    assert len(provider_server.requests) == 3


def test_authorization_is_dropped_on_cross_origin_redirect(provider_server):
    other = ProviderServer()
    other.thread.start()
    try:
        provider_server.respond(307, body=b"", headers={"Location": provider_server.url + "/same"})
        provider_server.respond(307, body=b"", headers={"Location": other.url + "/other"})
        other.respond(200, body=b"ok")

        response = outbound.request("GET", provider_server.url + "/", headers={"Authorization": "Bearer secret"})

        assert response.body == b"ok"
        assert [r.headers.get("authorization") for r in provider_server.requests] == ["Bearer secret", "Bearer secret"]
        assert other.last.headers.get("authorization") is None
    finally:
        other.httpd.shutdown()
        other.httpd.server_close()


def test_timeout_raises_retryable_error():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # accepts the TCP connection but never answers
    try:
        with pytest.raises(outbound.OutboundConnectionError, match="timed out") as info:
            outbound.request("GET", f"http://127.0.0.1:{server.getsockname()[1]}/", timeout=0.3)
        assert info.value.permanent is False
    finally:
        server.close()


def test_connection_refused_is_retryable():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(outbound.OutboundConnectionError):
        outbound.request("GET", f"http://127.0.0.1:{port}/", timeout=1)


def test_oversized_response_is_refused(provider_server):
    provider_server.respond(200, body=b"x" * 101)
    with pytest.raises(outbound.OutboundBlocked, match="larger than 100"):
        outbound.request("GET", provider_server.url + "/", max_response_bytes=100)


# --- HTTPS: pinned address, certificate still checked against the host name ----------------


def _self_signed(tmp_path, name: str):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path):
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert_path, key_path = _self_signed(tmp_path, "provider.test")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"secure {self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd.server_address[1], cert_path
    httpd.shutdown()
    httpd.server_close()


def _resolve_everything_to_loopback(monkeypatch):
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host in ("127.0.0.1", "localhost"):
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


def test_https_to_pinned_address_verifies_the_host_name(tls_server, monkeypatch):
    import ssl

    port, cert_path = tls_server
    _resolve_everything_to_loopback(monkeypatch)
    context = ssl.create_default_context(cafile=str(cert_path))

    response = outbound.request("GET", f"https://provider.test:{port}/x", ssl_context=context,
                                allowed_networks=LOOPBACK_ONLY)

    assert (response.status, response.body) == (200, f"secure provider.test:{port}".encode())


def test_https_certificate_for_another_name_is_refused(tls_server, monkeypatch):
    import ssl

    port, cert_path = tls_server
    _resolve_everything_to_loopback(monkeypatch)
    context = ssl.create_default_context(cafile=str(cert_path))

    with pytest.raises(outbound.OutboundConnectionError, match="TLS with other.test failed"):
        outbound.request("GET", f"https://other.test:{port}/x", ssl_context=context, allowed_networks=LOOPBACK_ONLY)


def test_https_untrusted_certificate_is_refused_by_default(tls_server, monkeypatch):
    port, _cert_path = tls_server
    _resolve_everything_to_loopback(monkeypatch)
    with pytest.raises(outbound.OutboundConnectionError, match="certificate verify failed"):
        outbound.request("GET", f"https://provider.test:{port}/x", allowed_networks=LOOPBACK_ONLY)


def test_the_default_tls_context_is_made_once_and_verifies(tls_server, monkeypatch):
    """Every HTTPS, SMTP and IMAP connection shares one client context per process: making one
    loads the whole trust store (25.7 ms of CPU measured), which each send used to pay."""
    import ssl

    shared = outbound.tls_context()
    assert outbound.tls_context() is shared
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname

    port, _cert_path = tls_server
    _resolve_everything_to_loopback(monkeypatch)
    made = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: made.append(1) or real(*a, **k))
    for _ in range(2):
        with pytest.raises(outbound.OutboundConnectionError, match="certificate verify failed"):
            outbound.request("GET", f"https://provider.test:{port}/x", allowed_networks=LOOPBACK_ONLY)
    assert made == []

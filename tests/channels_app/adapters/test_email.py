from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socketserver
import threading
from email import message_from_bytes, policy
from urllib.parse import urlencode

import pytest

from channels_app.adapters.base import AdapterError, ConfigError, Identity, OutboundMessage, ParseError, SignatureError
from channels_app.adapters.email import (
    EmailAdapter,
    EmailConfig,
    auto_reply_reason,
    mailgun_signature,
    parse_mime,
    strip_quoted_reply,
    verify_mailgun,
)

SECRET = "inbound-secret"


def make_adapter(**overrides) -> EmailAdapter:
    values = dict(address="support@cx.example.com", inbound_secret=SECRET)
    values.update(overrides)
    return EmailAdapter(EmailConfig(**values))


def raw_signature(body: bytes) -> dict[str, str]:
    return {"X-Inbound-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"inbound:{password}".encode()).decode()}


# --- raw MIME -------------------------------------------------------------------------------


def test_raw_signature(shared_fixture):
    body = shared_fixture("email_gmail_reply_quote.eml")
    make_adapter().verify(body, raw_signature(body))
    with pytest.raises(SignatureError, match="does not match"):
        make_adapter().verify(body + b"x", raw_signature(body))
    with pytest.raises(SignatureError, match="missing"):
        make_adapter().verify(body, {})


def test_gmail_reply_is_stripped_to_the_new_text(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("email_gmail_reply_quote.eml"))

    assert event.kind == "message"
    assert event.provider_message_id == "CAKsfaBW4hj0Gek6TwbR3erng4P1y0CZzJ0d=pXtCNnYnbe7PLg@mail.gmail.com"
    assert event.text == "Hello"
    assert event.extra["full_text"] == "Hello\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <xxx@gmail.com> wrote:\n\n> Hi\n"
    assert event.identities == [Identity("email", "xxx@gmail.com", False)]
    assert (event.display_name, event.extra["subject"], event.extra["to"]) == ("Megan One", "Re: Test", ["bob@example.com"])
    assert event.extra["auto_reply"] is False


def test_threading_headers(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("email_gmail_reply_in_reply_to_quote.eml"))

    assert event.provider_message_id == "CAFkiBVwJjO_k_e-LpiKi7MAQAKbHX5nkEPcf0y1R=bjcEHogMg@mail.gmail.com"
    assert event.reply_to_id == "0100017b5d8efc70-c7f18809-aa55-48f6-91fd-b626092ed8b3-000000@email.amazonses.com"
    assert event.extra["references"] == [
        "CAFkiBVxGoURoqdkY-O_25F-8b41kb-GWBc6hh4Djd5ynwOikXA@mail.gmail.com",
        "0100017b5d8efc70-c7f18809-aa55-48f6-91fd-b626092ed8b3-000000@email.amazonses.com"]
    assert event.extra["to"] == ["reply+6bdc3f4d-0bec-4515-a284-5d916fdde489@example.com"]
    assert event.text == "Yes, I am providing you step how to reproduce this issue"  # quote and signature gone
    assert "Any update on this?" in event.extra["full_text"]


def test_outlook_thread_keeps_real_attachments(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("email_reply_thread_with_attachments.eml"))

    assert event.reply_to_id == "EEDDF5F5-2786-4B3F-B15A-124A9A29A8D3@agade.info"
    assert event.text.startswith("Ciao sere mi puoi dire se il mio cliente deve fare questa dichiarazione?")
    assert "Inviato:" not in event.text and "Buongiorno Mariachiara" not in event.text
    assert "Inizio messaggio inoltrato:" in event.extra["full_text"]
    assert [(a.filename, a.mime_type, a.size, a.kind) for a in event.attachments] == [
        ("image001.jpg", "image/jpeg", 2478, "image"), ("att24916.htm", "text/html", 1392, "document"),
        ("image002.jpg", "image/jpeg", 2057, "image"), ("att09558.htm", "text/html", 3588, "document"),
        ("image003.jpg", "image/jpeg", 1832, "image"), ("att04803.htm", "text/html", 4860, "document"),
        ("20170609091403417.pdf", "application/pdf", 34470, "document"), ("att18831.htm", "text/html", 524, "document")]
    assert event.attachments[0].content[:3] == b"\xff\xd8\xff"  # JPEG magic
    assert event.attachments[6].content[:5] == b"%PDF-"
    assert event.attachments[6].sha256 == hashlib.sha256(event.attachments[6].content).hexdigest()


def test_many_empty_attachments(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("email_gmail_quote_multiple_attachments.eml"))

    assert len(event.attachments) == 30
    assert {(a.mime_type, a.size) for a in event.attachments} == {("image/png", 0)}
    assert event.attachments[0].filename == "Screenshot 2023-05-03 at 3.32.04 PM.png"
    assert event.attachments[0].media_id == "f_lh8nwk8l3"
    assert event.text.endswith("seamless and efficient.")
    assert "Okay noted" not in event.text


def test_own_auto_reply_is_flagged(own_fixture):
    [event] = make_adapter().parse(own_fixture("email/auto_reply_out_of_office.eml"))

    assert (event.kind, event.extra["auto_reply"], event.extra["auto_reply_reason"]) == ("message", True, "auto-submitted")
    assert event.reply_to_id == "msg-42@cx.example.com"


def test_own_bounce_becomes_failed_status_of_original(own_fixture):
    [event] = make_adapter().parse(own_fixture("email/bounce_dsn.eml"))

    assert (event.kind, event.status, event.provider_message_id) == ("status", "failed", "msg-43@cx.example.com")
    assert (event.error_code, event.error_title) == (
        "5.1.1", "smtp; 550 5.1.1 <nobody@example.co.id>: Recipient address rejected: User unknown")
    assert event.extra["auto_reply"] is True


@pytest.mark.parametrize(
    ("name", "text", "reply_to"),
    [("email/indonesian_reply_html_only.eml", "Barang sudah sampai, terima kasih!\nSalam, Budi", "msg-42@cx.example.com"),
     ("email/indonesian_reply_plain.eml", "Baik, saya tunggu.", "msg-42@cx.example.com")],
)
def test_own_indonesian_replies(own_fixture, name, text, reply_to):
    [event] = make_adapter().parse(own_fixture(name))
    assert (event.text, event.reply_to_id) == (text, reply_to)


@pytest.mark.parametrize(
    ("headers", "content_type", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "text/plain", "auto-submitted"),
        ({"Auto-Submitted": "auto-generated"}, "text/plain", "auto-submitted"),
        ({"Auto-Submitted": "no"}, "text/plain", ""),
        ({"X-Autoreply": "yes"}, "text/plain", "autoreply"),
        ({"X-Autorespond": "1"}, "text/plain", "autoreply"),
        ({"Precedence": "bulk"}, "text/plain", "precedence"),
        ({"Precedence": "auto_reply"}, "text/plain", "precedence"),
        ({"From": "MAILER-DAEMON@mx.example.net"}, "text/plain", "bounce"),
        ({"X-Failed-Recipients": "a@b.c"}, "text/plain", "bounce"),
        ({}, "multipart/report", "bounce"),
        ({"Return-Path": "<>"}, "text/plain", "null-sender"),
        ({"From": "Sari <sari@example.co.id>"}, "text/plain", ""),
    ],
)
def test_auto_reply_reason(headers, content_type, reason):
    assert auto_reply_reason(headers, content_type) == reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks!\n\n-----Original Message-----\nFrom: a\n", "Thanks!"),
        ("Ok\n\nLe lun. 2 avr. 2012 à 18:26, Megan <x@y.z> a écrit :\n> hi", "Ok"),
        ("Ok\nFrom: CX <support@cx.example.com>\nSent: Monday\nTo: me\n\nold", "Ok"),
        ("From: me\nnot a header block\nbody", "From: me\nnot a header block\nbody"),
        ("Terima kasih\n-- \nBudi\nCEO", "Terima kasih"),
        ("no quote at all", "no quote at all"),
    ],
)
def test_strip_quoted_reply(text, expected):
    assert strip_quoted_reply(text) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"", "empty message"), (b"   \n", "empty message"), (b"Subject: hi\n\nno sender", "no From address")],
)
def test_malformed_mime(body, reason):
    with pytest.raises(ParseError, match=reason):
        parse_mime(body)


RAW_HEADERS = {"Content-Type": "message/rfc822"}
BOUNCE_WITHOUT_FROM = b"""Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; nobody@example.co.id
Action: failed
Status: 5.1.1

--b
Content-Type: text/rfc822-headers

Message-ID: <msg-43@cx.example.com>

--b--
"""


@pytest.mark.parametrize("body", [
    b"", b"   \n", b"Subject: hi\n\nno sender", b"From: \nSubject: x\n\nblank sender",
    b"no headers at all", b"Content-Type: multipart/report\n\nnot a report, no sender",
    BOUNCE_WITHOUT_FROM, b"From: a@example.com\nSubject: x\n\nhello",
    b"From: Sari <sari@example.co.id>\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nbroken",
])
def test_the_acknowledgement_check_refuses_exactly_what_parsing_refuses(body):
    adapter = make_adapter()
    try:
        adapter.parse(body, RAW_HEADERS)
        expected = None
    except ParseError as exc:
        expected = exc.message
    try:
        adapter.check_body(body, RAW_HEADERS)
        found = None
    except ParseError as exc:
        found = exc.message
    assert found == expected


def test_the_acknowledgement_check_accepts_every_real_message(own_fixture, shared_fixture):
    adapter = make_adapter()
    for name in ("email/auto_reply_out_of_office.eml", "email/bounce_dsn.eml", "email/indonesian_reply_plain.eml",
                 "email/indonesian_reply_html_only.eml"):
        adapter.check_body(own_fixture(name), RAW_HEADERS)
    for name in ("email_gmail_reply_quote.eml", "email_reply_thread_with_attachments.eml",
                 "email_gmail_quote_multiple_attachments.eml"):
        adapter.check_body(shared_fixture(name), RAW_HEADERS)


def test_the_acknowledgement_check_reads_only_the_headers(monkeypatch):
    """The body is parsed once, when the delivery is processed: not at the acknowledgement."""
    import channels_app.adapters.email as email_adapter

    def no_full_parse(raw):
        raise AssertionError("the acknowledgement parsed the whole message")

    monkeypatch.setattr(email_adapter, "parse_mime", no_full_parse)
    make_adapter().check_body(b"From: a@example.com\nSubject: x\n\n" + b"x" * 10_000, RAW_HEADERS)


def test_message_without_message_id_gets_a_stable_synthetic_id():
    body = b"From: a@example.com\nSubject: x\n\nhello"
    first, second = parse_mime(body), parse_mime(body)
    assert first.provider_message_id == second.provider_message_id == "sha256-" + hashlib.sha256(body).hexdigest()
    assert first.extra["synthetic_id"] is True


# --- Mailgun --------------------------------------------------------------------------------


def mailgun_body(shared_fixture, **override) -> tuple[bytes, dict]:
    fields = json.loads(shared_fixture("mailgun_inbound_route_fields.json"))
    vector = json.loads(shared_fixture("mailgun_route_signature_vector.json"))
    fields.update({"timestamp": vector["timestamp"], "token": vector["token"], "signature": vector["expected_signature"]})
    fields.update(override)
    return urlencode(fields).encode(), vector


def test_mailgun_vector(shared_fixture):
    vector = json.loads(shared_fixture("mailgun_route_signature_vector.json"))
    assert mailgun_signature(vector["webhook_signing_key"], vector["timestamp"], vector["token"]) == vector["expected_signature"]


def test_mailgun_verify_accepts_fresh_and_rejects_replay_and_forgery(shared_fixture):
    body, vector = mailgun_body(shared_fixture)
    adapter = make_adapter(inbound_format="mailgun", mailgun_signing_key=vector["webhook_signing_key"])
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    issued = int(vector["timestamp"])

    adapter.verify(body, headers, now=issued + 30)
    with pytest.raises(SignatureError, match="possible replay"):
        adapter.verify(body, headers, now=issued + 11 * 60)
    forged, _ = mailgun_body(shared_fixture, token=vector["forged_token_same_signature_must_fail"])
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(forged, headers, now=issued + 30)
    with pytest.raises(SignatureError, match="required"):
        verify_mailgun({"timestamp": "1"}, "key")


def test_mailgun_parse_route_fields(shared_fixture):
    body, vector = mailgun_body(shared_fixture)
    adapter = make_adapter(inbound_format="mailgun", mailgun_signing_key=vector["webhook_signing_key"])

    [event] = adapter.parse(body, {"Content-Type": "application/x-www-form-urlencoded"})

    assert event.provider_message_id == "CAEPk3R+4Zr@mail.example.org"
    assert event.identities == [Identity("email", "from+test@example.org", False)]
    assert event.display_name == "Displayed From"
    assert event.text == "stripped plaintext body"
    assert event.extra["full_text"] == "Test body plain"
    assert event.extra["to"] == ["test@inbound.example.com", "other@example.com"]
    assert event.extra["subject"] == "Test subject"
    assert event.extra["recipient"] == "test@inbound.example.com"


def test_mailgun_body_mime_is_parsed_as_mime(shared_fixture):
    mime = shared_fixture("email_gmail_reply_quote.eml").decode()
    body = urlencode({"body-mime": mime, "timestamp": "1", "token": "t", "signature": "s"}).encode()
    adapter = make_adapter(inbound_format="mailgun", mailgun_signing_key="k")
    [event] = adapter.parse(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert (event.text, event.display_name) == ("Hello", "Megan One")


# --- Postmark -------------------------------------------------------------------------------


def test_postmark(shared_fixture):
    body = shared_fixture("postmark_inbound.json")
    adapter = make_adapter(inbound_format="postmark")
    adapter.verify(body, basic(SECRET))
    with pytest.raises(SignatureError):
        adapter.verify(body, basic("wrong"))
    with pytest.raises(SignatureError):
        adapter.verify(body, {})

    [event] = adapter.parse(body, {"Content-Type": "application/json"})

    assert event.provider_message_id == "00000000-0000-0000-0000-000000000000"
    assert event.identities == [Identity("email", "support@postmarkapp.com", False)]
    assert (event.display_name, event.text) == ("Postmarkapp Support", "This is the reply text")
    assert event.extra["full_text"] == "This is a test text body."
    assert event.extra["mailbox_hash"] == "SampleHash"
    [attachment] = event.attachments
    assert (attachment.filename, attachment.mime_type, attachment.size, attachment.content) == (
        "test.txt", "text/plain", 45, b"This is attachment contents, base-64 encoded.")


def test_postmark_malformed():
    with pytest.raises(ParseError, match="must be a JSON object"):
        make_adapter(inbound_format="postmark").parse(b"[1]")


# --- SendGrid -------------------------------------------------------------------------------

SENDGRID_HEADERS = {"Content-Type": "multipart/form-data; boundary=xYzZY", **basic(SECRET)}


def test_sendgrid_parsed_mode(shared_fixture):
    adapter = make_adapter(inbound_format="sendgrid")
    body = shared_fixture("sendgrid_inbound_parse_default.txt")
    adapter.verify(body, SENDGRID_HEADERS)

    [event] = adapter.parse(body, SENDGRID_HEADERS)

    assert event.identities == [Identity("email", "test@example.com", False)]
    assert (event.display_name, event.text, event.extra["subject"]) == (
        "Example User", "Hello Twilio SendGrid!", "Testing non-raw")
    assert event.extra["to"] == ["inbound@inbound.example.com"]
    assert event.provider_message_id.startswith("sha256-") and event.extra["synthetic_id"] is True


def test_sendgrid_raw_mode_with_attachment(shared_fixture):
    adapter = make_adapter(inbound_format="sendgrid")
    [event] = adapter.parse(shared_fixture("sendgrid_inbound_parse_raw_with_attachments.txt"), SENDGRID_HEADERS)

    assert event.extra["subject"] == "Inbound Parse Test Raw Data with Attachment"
    assert event.text == "Hello Twilio SendGrid!"
    [attachment] = event.attachments
    assert (attachment.filename, attachment.mime_type, attachment.size) == ("SendGrid.jpg", "image/jpeg", 10295)
    assert attachment.content[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [("multipart/form-data", "without a boundary"), ("multipart/form-data; boundary=other", "no parts")],
)
def test_sendgrid_malformed(shared_fixture, content_type, reason):
    with pytest.raises(ParseError, match=reason):
        make_adapter(inbound_format="sendgrid").parse(shared_fixture("sendgrid_inbound_parse_default.txt"),
                                                      {"Content-Type": content_type})


# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"address": "nope"}, "not an email address"), ({"inbound_format": "imap"}, "inbound_format"),
     ({"inbound_format": "mailgun"}, "mailgun_signing_key"), ({"smtp_port": 0}, "smtp_port"),
     ({"smtp_security": "tls"}, "smtp_security"), ({"inbound_secret": ""}, "inbound_secret is required"),
     ({"imap_security": "tls"}, "imap_security"), ({"imap_host": "imap.example.com"}, "imap_username")],
)
def test_config_validation(overrides, reason):
    with pytest.raises(ConfigError, match=reason):
        make_adapter(**overrides)


# --- SMTP send ------------------------------------------------------------------------------


class FakeSMTP:
    """Just enough ESMTP (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) to record what we send."""

    def __init__(self, rcpt_code: int = 250, data_code: int = 250, *, refuse: frozenset[str] = frozenset(),
                 hang_up_after: int | None = None) -> None:
        """`refuse`: recipients answered 550; `hang_up_after`: messages a connection takes before
        the server drops it (an idle timeout)."""
        self.messages: list[dict] = []
        self.auth: list[str] = []
        self.connections = 0
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                fake.connections += 1
                taken = 0
                envelope: dict = {"rcpt": []}
                self.wfile.write(b"220 fake ESMTP\r\n")
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.wfile.write(b"250-fake\r\n250 AUTH PLAIN\r\n")
                    elif verb == "AUTH":
                        fake.auth.append(base64.b64decode(command.split()[2]).decode())
                        self.wfile.write(b"235 ok\r\n")
                    elif verb == "MAIL":
                        envelope = {"rcpt": [], "from": command}  # a new transaction (after an RSET too)
                        self.wfile.write(b"250 ok\r\n")
                    elif verb == "RCPT":
                        envelope["rcpt"].append(command)
                        refused = any(f"<{address}>" in command for address in refuse)
                        self.wfile.write(f"{550 if refused else fake.rcpt_code} rcpt\r\n".encode())
                    elif verb == "DATA":
                        self.wfile.write(b"354 go\r\n")
                        data = b""
                        while (chunk := self.rfile.readline()) != b".\r\n":
                            data += chunk
                        envelope["data"] = data
                        fake.messages.append(envelope)
                        envelope = {"rcpt": []}
                        self.wfile.write(f"{fake.data_code} queued\r\n".encode())
                        taken += 1
                        if hang_up_after is not None and taken >= hang_up_after:
                            return
                    elif verb == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.rcpt_code, self.data_code = rcpt_code, data_code
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp_server():
    server = FakeSMTP()
    yield server
    server.close()


def smtp_adapter(port: int) -> EmailAdapter:
    return make_adapter(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", smtp_username="cx",
                        smtp_password="pw", display_name="CX Support")


def test_send_reply_with_threading_headers(smtp_server):
    message = OutboundMessage(to="budi@example.co.id", text="Pesanan Anda sudah dikirim.", subject="Re: Pesanan #42",
                              reply_to_id="reply-99@example.co.id", references=("msg-42@cx.example.com",),
                              idempotency_key="8c5e0b7a-0000-4000-8000-000000000042")

    result = smtp_adapter(smtp_server.port).send(message)

    assert result.provider_message_id == "8c5e0b7a-0000-4000-8000-000000000042@cx.example.com"
    [envelope] = smtp_server.messages
    assert envelope["from"].upper() == "MAIL FROM:<SUPPORT@CX.EXAMPLE.COM>"
    assert [r.split(":", 1)[1] for r in envelope["rcpt"]] == ["<budi@example.co.id>"]
    assert smtp_server.auth == ["\x00cx\x00pw"]
    sent = message_from_bytes(envelope["data"], policy=policy.default)
    assert sent["From"] == "CX Support <support@cx.example.com>"
    assert sent["Message-ID"] == "<8c5e0b7a-0000-4000-8000-000000000042@cx.example.com>"
    assert sent["In-Reply-To"] == "<reply-99@example.co.id>"
    assert sent["References"] == "<msg-42@cx.example.com> <reply-99@example.co.id>"
    assert sent["Subject"] == "Re: Pesanan #42"
    assert sent.get_content().rstrip("\r\n") == "Pesanan Anda sudah dikirim."


def test_non_ascii_names_subjects_and_bodies_arrive_intact(smtp_server):
    adapter = make_adapter(smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="none",
                           display_name="Toko Ñusantara, Cabang \"Pusat\"")
    adapter.send(OutboundMessage(to="budi@example.co.id", text="Sudah dikirim ✓ — terima kasih 🙏",
                                 subject="Re: Pesanan ✓ #42", idempotency_key="k-utf8"))

    sent = message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    assert sent["From"].addresses[0].display_name == "Toko Ñusantara, Cabang \"Pusat\""
    assert sent["From"].addresses[0].addr_spec == "support@cx.example.com"
    assert sent["Subject"] == "Re: Pesanan ✓ #42"
    assert sent.get_content().rstrip("\r\n") == "Sudah dikirim ✓ — terima kasih 🙏"


def test_a_header_injection_is_a_permanent_error_and_nothing_is_sent(smtp_server):
    with pytest.raises(AdapterError, match="cannot be built") as info:
        smtp_adapter(smtp_server.port).send(OutboundMessage(to="budi@example.co.id\nBcc: all@example.com",
                                                            text="x", idempotency_key="k"))
    assert info.value.permanent is True
    assert smtp_server.connections == 0


def test_same_idempotency_key_gives_same_message_id(smtp_server):
    adapter = smtp_adapter(smtp_server.port)
    message = OutboundMessage(to="a@example.com", text="x", idempotency_key="k1")
    assert adapter.send(message).provider_message_id == adapter.send(message).provider_message_id == "k1@cx.example.com"


@pytest.mark.parametrize(("rcpt_code", "data_code", "permanent"), [(550, 250, True), (450, 250, False),
                                                                    (250, 554, True), (250, 451, False)])
def test_smtp_errors(rcpt_code, data_code, permanent):
    server = FakeSMTP(rcpt_code=rcpt_code, data_code=data_code)
    try:
        with pytest.raises(AdapterError) as info:
            smtp_adapter(server.port).send(OutboundMessage(to="a@example.com", text="x", idempotency_key="k"))
        assert info.value.permanent is permanent
    finally:
        server.close()


def test_without_a_kept_connection_each_send_has_its_own(smtp_server):
    adapter = smtp_adapter(smtp_server.port)
    adapter.send(OutboundMessage(to="a@example.com", text="x", idempotency_key="k1"))
    adapter.send(OutboundMessage(to="b@example.com", text="y", idempotency_key="k2"))
    assert (smtp_server.connections, len(smtp_server.messages)) == (2, 2)


def test_a_kept_connection_sends_a_batch_over_one_session(smtp_server):
    adapter = smtp_adapter(smtp_server.port)
    with adapter.connection():
        for n in range(3):
            adapter.send(OutboundMessage(to=f"c{n}@example.com", text=f"reply {n}", idempotency_key=f"k{n}"))
    assert (smtp_server.connections, len(smtp_server.messages), smtp_server.auth) == (1, 3, ["\x00cx\x00pw"])
    assert [[r.split(":", 1)[1] for r in m["rcpt"]] for m in smtp_server.messages] == [
        [f"<c{n}@example.com>"] for n in range(3)]
    assert adapter._smtp is None  # closed when the batch ends


def test_a_kept_connection_the_server_dropped_is_opened_again_once():
    server = FakeSMTP(hang_up_after=1)
    try:
        adapter = smtp_adapter(server.port)
        with adapter.connection():
            for n in range(3):
                adapter.send(OutboundMessage(to=f"c{n}@example.com", text="x", idempotency_key=f"k{n}"))
        assert (server.connections, len(server.messages)) == (3, 3)
    finally:
        server.close()


def test_a_refused_recipient_does_not_spoil_the_kept_connection():
    server = FakeSMTP(refuse=frozenset({"gone@example.com"}))
    try:
        adapter = smtp_adapter(server.port)
        with adapter.connection():
            with pytest.raises(AdapterError) as info:
                adapter.send(OutboundMessage(to="gone@example.com", text="x", idempotency_key="k1"))
            adapter.send(OutboundMessage(to="here@example.com", text="y", idempotency_key="k2"))
        assert info.value.permanent is True
        assert server.connections == 1
        assert [[r.split(":", 1)[1] for r in m["rcpt"]] for m in server.messages] == [["<here@example.com>"]]
    finally:
        server.close()


def test_smtp_to_internal_address_is_refused(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(AdapterError, match="not a public address") as info:
        smtp_adapter(25).send(OutboundMessage(to="a@example.com", text="x"))
    assert info.value.permanent is True


def test_send_without_smtp_is_permanent():
    with pytest.raises(AdapterError, match="no SMTP server") as info:
        make_adapter().send(OutboundMessage(to="a@example.com", text="x"))
    assert info.value.permanent is True


# --- IMAP polling ---------------------------------------------------------------------------


class FakeIMAP:
    """Minimal IMAP4rev1 server: LOGIN, SELECT, UID SEARCH UNSEEN, UID FETCH BODY.PEEK[], UID STORE."""

    def __init__(self, messages: dict[int, bytes], password: str = "pw") -> None:
        self.messages = messages
        self.seen: set[int] = set()
        self.commands: list[str] = []
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("* OK fake IMAP ready")
                while line := self.rfile.readline():
                    tag, _, rest = line.decode().strip().partition(" ")
                    fake.commands.append(rest)
                    words = rest.split(" ")
                    verb = words[0].upper()
                    if verb == "CAPABILITY":
                        self.reply("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
                        self.reply(f"{tag} OK done")
                    elif verb == "LOGIN":
                        ok = words[2].strip('"') == password
                        self.reply(f"{tag} OK logged in" if ok else f"{tag} NO [AUTHENTICATIONFAILED] bad")
                    elif verb == "SELECT":
                        self.reply(f"* {len(fake.messages)} EXISTS")
                        self.reply(f"{tag} OK [READ-WRITE] selected")
                    elif verb == "UID" and words[1].upper() == "SEARCH":
                        unseen = " ".join(str(u) for u in sorted(fake.messages) if u not in fake.seen)
                        self.reply(f"* SEARCH {unseen}".rstrip())
                        self.reply(f"{tag} OK search done")
                    elif verb == "UID" and words[1].upper() == "FETCH":
                        uid = int(words[2])
                        raw = fake.messages[uid]
                        self.wfile.write(f"* {uid} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n".encode() + raw + b")\r\n")
                        self.reply(f"{tag} OK fetch done")
                    elif verb == "UID" and words[1].upper() == "STORE":
                        fake.seen.add(int(words[2]))
                        self.reply(f"{tag} OK stored")
                    elif verb == "LOGOUT":
                        self.reply("* BYE")
                        self.reply(f"{tag} OK bye")
                        return
                    else:
                        self.reply(f"{tag} BAD unknown")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def imap_config(port: int, password: str = "pw") -> EmailConfig:
    return make_adapter(imap_host="127.0.0.1", imap_port=port, imap_security="none", imap_username="support",
                        imap_password=password).config


def test_imap_poll_hands_over_then_marks_seen(shared_fixture, own_fixture):
    from channels_app.adapters.email import imap_poll

    first, second = shared_fixture("email_gmail_reply_quote.eml"), own_fixture("email/indonesian_reply_plain.eml")
    server = FakeIMAP({7: first, 9: second})
    received: list[tuple[str, bytes]] = []
    try:
        count = imap_poll(imap_config(server.port), lambda uid, raw: received.append((uid, raw)))
        again = imap_poll(imap_config(server.port), lambda uid, raw: received.append((uid, raw)))
    finally:
        server.close()

    assert (count, again) == (2, 0)
    assert received == [("7", first), ("9", second)]
    assert parse_mime(received[0][1]).text == "Hello"
    assert server.seen == {7, 9}
    assert "UID FETCH 7 (BODY.PEEK[])" in server.commands


def test_imap_message_stays_unseen_when_handling_fails(own_fixture):
    from channels_app.adapters.email import imap_poll

    server = FakeIMAP({3: own_fixture("email/indonesian_reply_plain.eml")})

    def failing_store(uid, raw):
        raise RuntimeError("database down")

    try:
        with pytest.raises(RuntimeError):
            imap_poll(imap_config(server.port), failing_store)
    finally:
        server.close()
    assert server.seen == set()


def test_imap_wrong_password_is_permanent():
    from channels_app.adapters.email import imap_poll

    server = FakeIMAP({})
    try:
        with pytest.raises(AdapterError, match="IMAP") as info:
            imap_poll(imap_config(server.port, password="wrong"), lambda uid, raw: None)
    finally:
        server.close()
    assert info.value.permanent is True


def test_imap_to_internal_address_is_refused(settings):
    from channels_app.adapters.email import imap_poll

    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(AdapterError, match="not a public address") as info:
        imap_poll(imap_config(993), lambda uid, raw: None)
    assert info.value.permanent is True


def test_send_with_attachment(smtp_server):
    from channels_app.adapters.base import Attachment

    attachment = Attachment(kind="document", mime_type="application/pdf", filename="invoice-42.pdf",
                            content=b"%PDF-1.4 test")

    smtp_adapter(smtp_server.port).send(OutboundMessage(to="budi@example.co.id", text="Terlampir invoice.",
                                                        subject="Invoice", idempotency_key="k-att",
                                                        attachment=attachment))

    sent = message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    [part] = list(sent.iter_attachments())
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "invoice-42.pdf", "application/pdf", b"%PDF-1.4 test")


def test_send_attachment_without_bytes_is_refused(smtp_server):
    from channels_app.adapters.base import Attachment

    with pytest.raises(AdapterError, match="need their bytes") as info:
        smtp_adapter(smtp_server.port).send(OutboundMessage(
            to="a@example.com", text="x", attachment=Attachment(kind="image", url="https://x/y.jpg")))
    assert info.value.permanent is True
    assert smtp_server.messages == []


def test_auto_reply_reason_on_a_parsed_message_looks_headers_up_without_parsing_them_all(monkeypatch):
    """An email.Message looks headers up case-insensitively itself; walking its items() parsed
    every header through the policy per missing one (a quarter of an e-mail's processing)."""
    from email.message import EmailMessage

    msg = message_from_bytes(b"From: Sari <sari@example.co.id>\r\nauto-submitted: auto-replied\r\nSubject: x\r\n\r\nhi",
                             policy=policy.default)

    def no_walk(self):
        raise AssertionError("items() walked")

    monkeypatch.setattr(EmailMessage, "items", no_walk)
    assert auto_reply_reason(msg, msg.get_content_type()) == "auto-submitted"

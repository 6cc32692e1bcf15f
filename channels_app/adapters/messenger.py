"""Facebook Messenger (Page) adapter.

Webhooks: ``object == "page"``, ``entry[].messaging[]`` (message, postback, delivery, read,
reaction, message_edit), signed with X-Hub-Signature-256. Sender ids are page-scoped (PSID),
so the identity is ``("messenger", psid)`` and only meaningful together with the inbox.
Send API: ``POST {base}/{version}/me/messages`` with the Page access token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from . import meta
from .base import (
    AdapterConfig,
    AdapterError,
    ConfigError,
    DeliveryResult,
    InboundEvent,
    OutboundMessage,
    call_provider,
    load_json,
)


@dataclass(frozen=True)
class MessengerConfig(AdapterConfig):
    page_id: str
    page_access_token: str
    app_secret: str
    verify_token: str
    api_base_url: str = ""
    api_version: str = meta.DEFAULT_GRAPH_VERSION

    required: ClassVar[tuple[str, ...]] = ("page_id", "page_access_token", "app_secret", "verify_token")
    secrets: ClassVar[tuple[str, ...]] = ("page_access_token", "app_secret", "verify_token")
    default_api_base_url: ClassVar[str] = meta.DEFAULT_GRAPH_BASE_URL
    provider: ClassVar[str] = "messenger"

    def validate(self) -> None:
        if not meta.valid_graph_version(self.api_version):
            raise ConfigError(f"api_version must look like 'v26.0', got {self.api_version!r}")


class MessengerAdapter:
    kind = "messenger"
    config_class = MessengerConfig
    identity_kind = "messenger"
    webhook_object = "page"

    def __init__(self, config: Any) -> None:
        self.config = config

    def verify(self, raw_body: bytes, headers: Mapping[str, str], **context: Any) -> None:
        meta.verify_signature(raw_body, headers, self.config.app_secret)

    def handshake(self, query: Mapping[str, str]) -> str:
        return meta.handshake(query, self.config.verify_token)

    def parse(self, raw_body: bytes, headers: Mapping[str, str] | None = None) -> list[InboundEvent]:
        return meta.parse_messaging(load_json(raw_body), expected_object=self.webhook_object,
                                    identity_kind=self.identity_kind)

    def send_url(self) -> str:
        c = self.config
        return f"{c.base_url}/{c.api_version}/me/messages"

    def access_token(self) -> str:
        return self.config.page_access_token

    def send(self, message: OutboundMessage) -> DeliveryResult:
        if not message.to or not (message.text or message.attachment):
            raise AdapterError("Send API needs a recipient id and text or an attachment", permanent=True)
        body = meta.send_api_body(message.to, message.text, message.attachment)
        response = call_provider("POST", self.send_url(), json=body,
                                 headers={"Authorization": f"Bearer {self.access_token()}"})
        body = meta.raise_for_graph_response(response)
        if not body.get("message_id"):
            raise AdapterError("Send API accepted the request but returned no message_id", permanent=False)
        return DeliveryResult(provider_message_id=str(body["message_id"]), raw=body)

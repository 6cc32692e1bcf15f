"""Instagram messaging adapter (Instagram API with Instagram Login).

Webhooks: ``object == "instagram"``, same ``entry[].messaging[]`` shape as Messenger, signed
with X-Hub-Signature-256. Sender ids are Instagram-scoped ids (IGSID): identity
``("instagram", igsid)``.
Send API: ``POST {base}/{version}/{instagram_account_id}/messages`` (base graph.instagram.com).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from . import meta
from .base import AdapterConfig, ConfigError
from .messenger import MessengerAdapter

DEFAULT_INSTAGRAM_BASE_URL = "https://graph.instagram.com"


@dataclass(frozen=True)
class InstagramConfig(AdapterConfig):
    instagram_account_id: str
    access_token: str
    app_secret: str
    verify_token: str
    api_base_url: str = ""
    api_version: str = meta.DEFAULT_GRAPH_VERSION

    required: ClassVar[tuple[str, ...]] = ("instagram_account_id", "access_token", "app_secret", "verify_token")
    secrets: ClassVar[tuple[str, ...]] = ("access_token", "app_secret", "verify_token")
    default_api_base_url: ClassVar[str] = DEFAULT_INSTAGRAM_BASE_URL
    provider: ClassVar[str] = "instagram"

    def validate(self) -> None:
        if not self.instagram_account_id.isdigit():
            raise ConfigError("instagram_account_id must be numeric")
        if not meta.valid_graph_version(self.api_version):
            raise ConfigError(f"api_version must look like 'v26.0', got {self.api_version!r}")


class InstagramAdapter(MessengerAdapter):
    kind = "instagram"
    config_class = InstagramConfig
    identity_kind = "instagram"
    webhook_object = "instagram"

    def send_url(self) -> str:
        c = self.config
        return f"{c.base_url}/{c.api_version}/{c.instagram_account_id}/messages"

    def access_token(self) -> str:
        return self.config.access_token

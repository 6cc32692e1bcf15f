from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    label = "channels_app"
    verbose_name = _("Channels and conversations")

    def ready(self) -> None:
        from customers import merge_hooks

        # Conversations follow the customer when profiles are merged (and go back on unmerge).
        merge_hooks.register("channels_app.Conversation", "customer")

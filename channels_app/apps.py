from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    label = "channels_app"
    verbose_name = _("Channels and conversations")

    def ready(self) -> None:
        from channels_app.services import privacy
        from customers import events, merge_hooks

        # Conversations follow the customer when profiles are merged (and go back on unmerge).
        merge_hooks.register("channels_app.Conversation", "customer")
        # Both profiles may have an unresolved conversation: fold one first, undo on unmerge.
        from channels_app.services import conversations

        merge_hooks.register_participant(
            "channels.open_conversations",
            prepare=conversations.merge_participant_prepare,
            restore=conversations.merge_participant_restore,
        )
        # Erasing or exporting a customer covers their messages too.
        events.customer_erased.connect(privacy.on_customer_erased, dispatch_uid="channels_app.erase")
        events.customer_export_collect.connect(privacy.on_customer_export_collect, dispatch_uid="channels_app.export")
        # The webhook endpoint keeps inboxes for a few seconds per process: forget them on change.
        from django.db.models.signals import post_delete, post_save

        from channels_app.models import Inbox
        from channels_app.services.inboxes import inbox_receivers_forget

        post_save.connect(inbox_receivers_forget, sender=Inbox, dispatch_uid="channels_app.inbox_receivers.save")
        post_delete.connect(inbox_receivers_forget, sender=Inbox, dispatch_uid="channels_app.inbox_receivers.delete")
        # Open agent sockets follow team membership changes (team groups carry customer data).
        from accounts.models import TeamMembership
        from channels_app.realtime import on_team_membership_changed

        post_save.connect(on_team_membership_changed, sender=TeamMembership, dispatch_uid="channels_app.teams.save")
        post_delete.connect(on_team_membership_changed, sender=TeamMembership, dispatch_uid="channels_app.teams.delete")

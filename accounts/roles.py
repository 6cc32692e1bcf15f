"""What each role may do, as Django permissions on the role's group.

The groups are created (and their permissions refreshed) by `roles_sync()`, which the
post_migrate hook and `seed_demo` call; the list below is the single source of truth.
"""
from __future__ import annotations

from accounts.models import Role

# app_label -> model -> actions. Apps added later extend this map for their own models.
ROLE_PERMISSIONS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    Role.AGENT: {
        "accounts": {"team": ("view",)},
        "customers": {
            "customer": ("view", "add", "change"),
            "identity": ("view", "add", "change", "delete"),
            "customernote": ("view", "add", "change", "delete"),
            "customerconsent": ("view", "add", "change"),
            "tag": ("view", "add"),
            "timelineentry": ("view",),
            "attributedefinition": ("view",),
            "segment": ("view",),
            "mergesuggestion": ("view",),
            "customermerge": ("view",),
        },
        "channels_app": {
            "inbox": ("view",),
            "conversation": ("view", "change"),
            "message": ("view", "add"),
            "cannedresponse": ("view", "add"),
            "label": ("view",),
        },
        "journeys": {
            "customerevent": ("view",),
            "stagechange": ("view",),
            "csatsurvey": ("view",),
            "csatresponse": ("view",),
        },
    },
    Role.SUPERVISOR: {
        "accounts": {
            "team": ("view", "add", "change"),
            "teammembership": ("view", "add", "change", "delete"),
            "user": ("view",),
            "auditentry": ("view",),
        },
        "customers": {
            "customer": ("view", "add", "change"),
            "identity": ("view", "add", "change", "delete"),
            "customernote": ("view", "add", "change", "delete"),
            "customerconsent": ("view", "add", "change"),
            "tag": ("view", "add", "change", "delete"),
            "timelineentry": ("view",),
            "attributedefinition": ("view", "add", "change", "delete"),
            "segment": ("view", "add", "change", "delete"),
            "mergesuggestion": ("view", "change"),
            "customermerge": ("view", "add", "change"),
            "importjob": ("view", "add"),
        },
        "channels_app": {
            "inbox": ("view", "add", "change"),
            "conversation": ("view", "change"),
            "message": ("view", "add"),
            "webhookevent": ("view", "change"),
            "cannedresponse": ("view", "add", "change", "delete"),
            "label": ("view", "add", "change", "delete"),
            "officehours": ("view", "add", "change"),
            "officehoursinterval": ("view", "add", "change", "delete"),
            "inboxautomaticmessage": ("view", "add", "change", "delete"),
            "automaticreplysent": ("view",),
        },
        "journeys": {
            "customerevent": ("view", "add"),
            "eventtypemapping": ("view",),
            "stagerule": ("view",),
            "stagechange": ("view", "add"),
            "csatsurvey": ("view",),
            "csatresponse": ("view",),
            "conversationresolution": ("view",),
            "maturityassessment": ("view", "add", "change"),
            "maturityscore": ("view", "add", "change"),
        },
    },
    # Admins get every permission of every model (see roles_sync).
    Role.ADMIN: {},
}

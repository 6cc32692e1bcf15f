"""The audit log listens to authentication events it must not be coupled to (Django, allauth)."""
from __future__ import annotations

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from django.contrib.auth import signals as auth_signals
from django.dispatch import receiver

from accounts.models import AuditEntry
from accounts.services import audit_record


@receiver(auth_signals.user_logged_in, dispatch_uid="audit_sign_in")
def _signed_in(sender, request, user, **kwargs):
    audit_record(action=AuditEntry.Action.SIGN_IN, actor=user, target=user, request=request)


@receiver(auth_signals.user_logged_out, dispatch_uid="audit_sign_out")
def _signed_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action=AuditEntry.Action.SIGN_OUT, actor=user, target=user, request=request)


@receiver(auth_signals.user_login_failed, dispatch_uid="audit_sign_in_failed")
def _sign_in_failed(sender, credentials, request=None, **kwargs):
    # Only the identifier is kept; Django already masks the password in `credentials`.
    identifier = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit_record(
        action=AuditEntry.Action.SIGN_IN_FAILED,
        actor_label=identifier,
        request=request,
        data={"identifier": identifier},
    )


@receiver(account_signals.password_changed, dispatch_uid="audit_password_changed")
def _password_changed(sender, request, user, **kwargs):
    audit_record(action=AuditEntry.Action.PASSWORD_CHANGED, actor=user, target=user, request=request)


@receiver(account_signals.password_reset, dispatch_uid="audit_password_reset")
def _password_reset(sender, request, user, **kwargs):
    audit_record(action=AuditEntry.Action.PASSWORD_RESET, actor=user, target=user, request=request)


@receiver(mfa_signals.authenticator_added, dispatch_uid="audit_mfa_added")
def _mfa_added(sender, request, user, authenticator, **kwargs):
    audit_record(
        action=AuditEntry.Action.MFA_ENABLED, actor=user, target=user, request=request,
        data={"type": authenticator.type},
    )


@receiver(mfa_signals.authenticator_removed, dispatch_uid="audit_mfa_removed")
def _mfa_removed(sender, request, user, authenticator, **kwargs):
    audit_record(
        action=AuditEntry.Action.MFA_DISABLED, actor=user, target=user, request=request,
        data={"type": authenticator.type},
    )

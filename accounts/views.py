from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import ApiTokenForm, AvailabilityForm, PreferencesForm


@login_required
def home(request):
    """Each role's landing page: the agent's own status and team; the supervisor's floor."""
    user = request.user
    context = {
        "teams": selectors.team_list(viewer=user),
        "availability_form": AvailabilityForm(initial={"availability": user.availability}),
    }
    if user.is_supervisor_or_admin:
        context["agents"] = selectors.agent_list(viewer=user)
    return render(request, "accounts/home.html", context)


@login_required
@require_POST
def availability_update(request):
    form = AvailabilityForm(request.POST)
    if form.is_valid():
        services.user_availability_set(user=request.user, availability=form.cleaned_data["availability"])
        messages.success(request, _("Your availability is now %(status)s.") % {"status": request.user.get_availability_display()})
    else:
        messages.error(request, _("Choose online, away or offline."))
    return redirect("home")


@login_required
def preferences(request):
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Preferences saved."))
        return redirect("preferences")
    return render(request, "accounts/preferences.html", {"form": form})


@login_required
def api_tokens(request):
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _token, new_token = services.api_token_create(
            user=request.user, name=form.cleaned_data["name"], expires_at=form.cleaned_data["expires_at"]
        )
        form = ApiTokenForm()
    return render(
        request,
        "accounts/api_tokens.html",
        {"form": form, "tokens": selectors.api_token_list(viewer=request.user), "new_token": new_token},
    )


@login_required
@require_POST
def api_token_revoke(request, pk: int):
    token = get_object_or_404(selectors.api_token_list(viewer=request.user), pk=pk)
    services.api_token_revoke(token=token, actor=request.user)
    messages.success(request, _("Token revoked."))
    return redirect("api_tokens")

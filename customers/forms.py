"""Forms of the agent UI. They parse input; services do the writes."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from customers.models import AttributeDefinition, IdentityKind, LifecycleStage, Segment
from cxplatform.forms import PlainModelChoiceField


class CustomerSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": _("Name, phone, email…"), "type": "search"}),
    )
    stage = forms.ChoiceField(label=_("Stage"), required=False, choices=[("", _("Any stage")), *LifecycleStage.choices])
    tag = forms.CharField(label=_("Tag"), required=False, max_length=50)
    channel = forms.ChoiceField(
        label=_("Channel"), required=False, choices=[("", _("Any channel")), *IdentityKind.choices]
    )
    segment = PlainModelChoiceField(
        label=_("Segment"), required=False, queryset=Segment.objects.none(), empty_label=_("No segment")
    )

    def __init__(self, *args, segments=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = segments if segments is not None else Segment.objects.none()


class NoteForm(forms.Form):
    body = forms.CharField(label=_("New note"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class TagsForm(forms.Form):
    tags = forms.CharField(label=_("Tags"), required=False, max_length=500, help_text=_("Separate tags with commas."))

    def cleaned_names(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["tags"].split(",") if name.strip()]


class StageForm(forms.Form):
    lifecycle_stage = forms.ChoiceField(label=_("Lifecycle stage"), choices=LifecycleStage.choices)


class ProfileForm(forms.Form):
    display_name = forms.CharField(label=_("Name"), required=False, max_length=200)
    language = forms.ChoiceField(label=_("Language"), required=False, choices=[("", "—"), *settings.LANGUAGES])
    time_zone = forms.CharField(
        label=_("Time zone"), required=False, max_length=64, help_text=_("For example Asia/Jakarta.")
    )


class IdentityForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[(value, label) for value, label in IdentityKind.choices if value in ("phone", "email", "external_id")],
    )
    value = forms.CharField(label=_("Value"), max_length=255)


class ConsentForm(forms.Form):
    channel = forms.CharField(label=_("Channel"), max_length=30, help_text=_("e.g. whatsapp, email, sms"))
    opted_in = forms.TypedChoiceField(
        label=_("Consent"), choices=[("1", _("Opted in")), ("0", _("Opted out"))], coerce=lambda v: v == "1"
    )
    source = forms.CharField(label=_("Where was it given?"), max_length=100)


class AttributesForm(forms.Form):
    """One field per attribute definition; values are validated again by the service."""

    def __init__(self, *args, definitions: list[AttributeDefinition], initial_values: dict, **kwargs):
        super().__init__(*args, **kwargs)
        kinds = AttributeDefinition.Type
        for definition in definitions:
            initial = initial_values.get(definition.key)
            name = f"attr_{definition.key}"
            if definition.type == kinds.BOOLEAN:
                field = forms.ChoiceField(choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))])
                initial = {True: "true", False: "false"}.get(initial, "")
            elif definition.type == kinds.CHOICE:
                field = forms.ChoiceField(choices=[("", "—"), *[(c, c) for c in definition.choices]])
            elif definition.type == kinds.DATE:
                field = forms.CharField(widget=forms.DateInput(attrs={"type": "date"}))
            elif definition.type == kinds.NUMBER:
                field = forms.CharField(widget=forms.TextInput(attrs={"inputmode": "decimal"}))
            elif definition.type == kinds.URL:
                field = forms.CharField(widget=forms.URLInput())
            else:
                field = forms.CharField(max_length=1000)
            field.required = False
            field.label = definition.label
            field.initial = initial
            self.fields[name] = field

    def attribute_values(self) -> dict:
        return {name[len("attr_") :]: (value if value != "" else None) for name, value in self.cleaned_data.items()}


class MergeForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)


class MergeSourceForm(forms.Form):
    source = forms.IntegerField(label=_("Customer id to merge into this one"), min_value=1)


class EraseConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that the name, identities, notes, consent and message texts are deleted for good."),
        required=True,
    )


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), help_text=_("UTF-8, comma separated, with a header row."))


class ImportMappingForm(forms.Form):
    dry_run = forms.BooleanField(
        label=_("Dry run: check the file and count, but save nothing"), required=False, initial=True
    )

    def __init__(self, *args, headers: list[str], choices: list[tuple[str, str]], initial_mapping: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = headers
        for index, header in enumerate(headers):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=header, choices=choices, required=False, initial=initial_mapping.get(header, "")
            )

    def mapping(self) -> dict[str, str]:
        return {header: self.cleaned_data.get(f"col_{index}", "") for index, header in enumerate(self.headers)}


class CustomerCreateForm(forms.Form):
    display_name = forms.CharField(label=_("Name"), max_length=200)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    email = forms.CharField(label=_("Email"), max_length=254, required=False)

"""Chats scrubbed before issue 13.12 kept their token's hash: the token still opened them (a transcript of
scrubbed text, a survey). Scrubbing now clears it; this clears it for those scrubbed already."""

from django.db import migrations


def forget_tokens(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("routing", "Chat").objects.filter(scrubbed=True).exclude(token_hash="").update(token_hash="")


class Migration(migrations.Migration):
    dependencies = [("routing", "0006_sentmail")]

    operations = [migrations.RunPython(forget_tokens, migrations.RunPython.noop)]

"""Cheaper messages (docs/benchmarks.md, "Cheaper messages"): fewer indexes written per message, and
room in the chats table's pages for the heap-only update a message makes, and the patron's message
rate counted in the chat's row by that same update (routing/message_store.py)."""

import django.db.models.deletion
from django.db import migrations, models


def chats_keep_room(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":  # type: ignore[attr-defined]
        schema_editor.execute("ALTER TABLE routing_chat SET (fillfactor = 80)")  # type: ignore[attr-defined]


def chats_fill(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":  # type: ignore[attr-defined]
        schema_editor.execute("ALTER TABLE routing_chat RESET (fillfactor)")  # type: ignore[attr-defined]


class Migration(migrations.Migration):

    dependencies = [
        ('libraries', '0005_sms_numbers'),
        ('routing', '0013_canned_sets'),
    ]

    operations = [
        migrations.AddField(
            model_name='chat',
            name='rate_count',
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='chat',
            name='rate_window',
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AlterField(
            model_name='message',
            name='chat',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='routing.chat'),
        ),
        migrations.AlterField(
            model_name='message',
            name='file',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='routing.chatfile'),
        ),
        migrations.AlterField(
            model_name='message',
            name='librarian',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, to='libraries.staffprofile'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('librarian__isnull', False)), fields=['librarian'], name='message_librarian'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('file__isnull', False)), fields=['file'], name='message_file'),
        ),
        migrations.RunPython(chats_keep_room, chats_fill),
    ]

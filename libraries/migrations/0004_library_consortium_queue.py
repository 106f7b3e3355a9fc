"""Library.fallback becomes Library.consortium_queue: the word docs/routing.md uses for the step (issue 12).
The consortium file keeps its key `fallback` (docs/consortium-file.md)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("libraries", "0003_feed_token_hash"),
    ]

    operations = [
        migrations.RenameField(model_name="library", old_name="fallback", new_name="consortium_queue"),
        migrations.AlterField(
            model_name="library",
            name="consortium_queue",
            field=models.ForeignKey(
                blank=True, help_text="the consortium step's queue; default the consortium's first shared queue",
                null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="consortium_queue_for",
                to="libraries.queue"),
        ),
    ]

"""Offers and trace lines without the indexes nothing reads (docs/routing.md, "What a decision costs").

A broadcast writes an offer and a trace line per librarian of its step, and each row is an entry in
every index of its table. The offers' own indexes on `chat` (and its text-pattern twin, for LIKE) and on
`librarian` are served as well by (chat, status), (chat, librarian, step_serial) and (librarian, status);
a trace line's chat keeps one plain index. Done by hand: Django's AlterField drops and adds each
foreign key again, which validates every row of two of the largest tables to change an index.
"""

import django.db.models.deletion
from django.db import migrations, models

DROPPED = [
    "routing_offer_chat_id_ad7dc355",
    "routing_offer_chat_id_ad7dc355_like",
    "routing_offer_librarian_id_ea4b9ca8",
    "routing_traceevent_chat_id_d29ae14f",
    "routing_traceevent_chat_id_d29ae14f_like",
]


class Migration(migrations.Migration):

    dependencies = [
        ('libraries', '0010_verbose_names'),
        ('routing', '0023_structure_follows_consortium'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='offer',
                    name='chat',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='offers', to='routing.chat', verbose_name='chat'),
                ),
                migrations.AlterField(
                    model_name='offer',
                    name='librarian',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='offers', to='libraries.staffprofile',
                                            verbose_name='librarian'),
                ),
                migrations.AlterField(
                    model_name='traceevent',
                    name='chat',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='trace', to='routing.chat', verbose_name='chat'),
                ),
                migrations.AddIndex(
                    model_name='traceevent',
                    index=models.Index(fields=['chat'], name='routing_trace_chat'),
                ),
            ],
            database_operations=[
                # The new index first, so that a trace is never read without one.
                migrations.RunSQL(
                    'CREATE INDEX IF NOT EXISTS "routing_trace_chat" ON "routing_traceevent" ("chat_id")',
                    reverse_sql='DROP INDEX IF EXISTS "routing_trace_chat"'),
                *[migrations.RunSQL(f'DROP INDEX IF EXISTS "{name}"', reverse_sql=migrations.RunSQL.noop)  # (not made again: nothing read them)
                  for name in DROPPED],
            ],
        ),
    ]

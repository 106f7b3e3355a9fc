"""The chats going on (waiting or being answered), indexed alone: admission counts them once a second
(routing.admission), where the table keeps every chat of the years."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('consortium', '0008_verbose_names'),
        ('libraries', '0010_verbose_names'),
        ('routing', '0025_offer_and_trace_keys_unconstrained'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='chat',
            index=models.Index(condition=models.Q(('state__in', ['queued', 'active'])), fields=['state'], name='routing_chat_live'),
        ),
    ]

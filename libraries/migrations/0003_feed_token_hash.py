"""Rota feed tokens are kept hashed, like chat tokens (consortium.tokens).

Each stored token is replaced by its SHA-256, so the addresses librarians already subscribed to keep
working: the feed looks a token up by its hash. Going back cannot recover the tokens: it clears them,
and each librarian's page makes a new address on the next visit.
"""

import hashlib

from django.db import migrations, models


def hash_feed_tokens(apps, schema_editor):
    StaffProfile = apps.get_model("libraries", "StaffProfile")
    for profile in StaffProfile.objects.exclude(feed_token_hash=None).only("pk", "feed_token_hash"):
        profile.feed_token_hash = hashlib.sha256(profile.feed_token_hash.encode()).hexdigest()
        profile.save(update_fields=["feed_token_hash"])


def clear_feed_tokens(apps, schema_editor):
    apps.get_model("libraries", "StaffProfile").objects.update(feed_token_hash=None)


class Migration(migrations.Migration):

    dependencies = [
        ('libraries', '0002_rota_retention_feed'),
    ]

    operations = [
        migrations.RenameField(
            model_name='staffprofile',
            old_name='feed_token',
            new_name='feed_token_hash',
        ),
        migrations.RunPython(hash_feed_tokens, clear_feed_tokens),
    ]

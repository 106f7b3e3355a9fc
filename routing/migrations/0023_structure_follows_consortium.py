"""The consortium's own row under the structure's stamp (migration 0009's triggers, on one more table).

A chat routed alone (a deadline, a presence change's single chat) took its consortium's settings from
a join in the chat's lock: sixty columns compiled and loaded with every lock, most of a step
timeout's CPU before any decision. Now the kept structure (routing.structure) holds the row, and a
write to it changes the stamp as a write to a library or a queue does. Coordinators change these
settings a few times a year; nothing writes the row on a chat's path.
"""

from django.db import migrations

TABLE = "consortium_consortium"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    run = schema_editor.execute
    if vendor == "postgresql":
        run(f"CREATE TRIGGER {TABLE}_structure AFTER INSERT OR UPDATE OR DELETE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION routing_structure_bump()")
    elif vendor == "sqlite":
        for event in ("INSERT", "UPDATE", "DELETE"):
            run(f"CREATE TRIGGER {TABLE}_structure_{event.lower()} AFTER {event} ON {TABLE} "
                "BEGIN UPDATE routing_structureversion SET stamp = random() WHERE id = 1; END")


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_structure ON {TABLE}")
    elif vendor == "sqlite":
        for event in ("insert", "update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_structure_{event}")


class Migration(migrations.Migration):

    dependencies = [
        ("routing", "0022_chat_audience"),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]

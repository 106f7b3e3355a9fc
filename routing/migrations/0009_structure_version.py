"""A version stamp of every consortium's slow-changing structure, changed by the database itself.

routing.structure keeps each consortium's libraries, queues, hours, rota and staff per process and
reads this one row before each decision to know whether they still hold. Triggers on every table
the structure is built from set a new random stamp on any insert, update or delete, so nothing
that writes them (the admin, the importer, a bulk update, a psql session) can leave a process with
a stale picture. Random rather than +1: a rolled-back transaction's stamp is never seen again, so a
picture read inside one can never be mistaken for a later committed state.
"""

from django.db import migrations, models

TABLES = [
    "libraries_library", "libraries_librarypartner", "libraries_queue", "libraries_weeklyinterval",
    "libraries_closure", "libraries_specialhours", "libraries_staffprofile", "libraries_staffprofile_queues",
    "libraries_shift", "libraries_shiftassignment", "libraries_shiftswap",
]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    run = schema_editor.execute
    run("INSERT INTO routing_structureversion (id, stamp) VALUES (1, 0)")
    if vendor == "postgresql":
        run("""
            CREATE OR REPLACE FUNCTION routing_structure_bump() RETURNS trigger AS $$
            BEGIN
                UPDATE routing_structureversion SET stamp = (random() * 9.0e18)::bigint WHERE id = 1;
                RETURN NULL;
            END $$ LANGUAGE plpgsql""")
        for table in TABLES:
            run(f"CREATE TRIGGER {table}_structure AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION routing_structure_bump()")
    elif vendor == "sqlite":
        for table in TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                run(f"CREATE TRIGGER {table}_structure_{event.lower()} AFTER {event} ON {table} "
                    "BEGIN UPDATE routing_structureversion SET stamp = random() WHERE id = 1; END")
    # Another database: no triggers. Not one this project runs on (SQLite or PostgreSQL).


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_structure ON {table}")
        elif vendor == "sqlite":
            for event in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_structure_{event}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS routing_structure_bump()")


class Migration(migrations.Migration):

    dependencies = [
        ("routing", "0008_transcriptmail"),
        ("libraries", "0004_library_consortium_queue"),
    ]

    operations = [
        migrations.CreateModel(
            name="StructureVersion",
            fields=[
                ("id", models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ("stamp", models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]

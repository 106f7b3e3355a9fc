"""Each chat's audience as a column PostgreSQL keeps itself, for the queue position's count.

A patron's state frame (sent at every change of their chat, and at every long poll) carries their
place in the queue: the waiting chats that arrived earlier and wait for a queue of this chat's
audience. PostgreSQL counted it by reading the plan (jsonb) of every waiting chat of the consortium
and testing each queue of its steps: 7.5 ms for 2,000 waiting chats, the largest statement of a
step timeout (docs/benchmarks.md). Now a trigger writes the audience (the queues of steps 1..k)
whenever a chat's plan or step is written, by whatever statement, and the count compares arrays.

PostgreSQL only, and not a model field: no Django code reads or writes it. On SQLite the position is
counted in Python (routing.selectors.queue_position), as before.
"""

from django.db import migrations

AUDIENCE = """
    ARRAY(SELECT DISTINCT q.value
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof({row}.plan) = 'array' THEN {row}.plan
                                         ELSE '[]'::jsonb END) WITH ORDINALITY AS e(step, n),
               jsonb_array_elements_text(CASE WHEN jsonb_typeof(e.step -> 'queues') = 'array'
                                              THEN e.step -> 'queues' ELSE '[]'::jsonb END) AS q(value)
          WHERE e.n <= {row}.step_index + 1)"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    run("ALTER TABLE routing_chat ADD COLUMN audience text[] NOT NULL DEFAULT '{}'")
    run(f"""
        CREATE OR REPLACE FUNCTION routing_chat_audience() RETURNS trigger AS $$
        BEGIN
            NEW.audience := {AUDIENCE.format(row="NEW")};
            RETURN NEW;
        END $$ LANGUAGE plpgsql""")
    run("CREATE TRIGGER routing_chat_audience BEFORE INSERT OR UPDATE OF plan, step_index ON routing_chat "
        "FOR EACH ROW EXECUTE FUNCTION routing_chat_audience()")
    # Chats waiting now; an ended chat is never counted.
    run(f"UPDATE routing_chat c SET audience = {AUDIENCE.format(row='c')} WHERE c.state = 'queued'")
    # The count finds the waiting chats that share a queue through this index (a few of the
    # consortium's waiting chats), not by comparing every waiting chat's array (4.8 ms for 2,800
    # chats). Without fastupdate: a few thousand waiting chats make a small index, and entries left
    # in GIN's pending list are read one by one at every count (1.5 ms until a vacuum merged them).
    run("CREATE INDEX routing_chat_waiting_audience ON routing_chat USING gin (audience) WITH (fastupdate = off) "
        "WHERE state = 'queued'")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS routing_chat_waiting_audience")
    schema_editor.execute("DROP TRIGGER IF EXISTS routing_chat_audience ON routing_chat")
    schema_editor.execute("DROP FUNCTION IF EXISTS routing_chat_audience()")
    schema_editor.execute("ALTER TABLE routing_chat DROP COLUMN IF EXISTS audience")


class Migration(migrations.Migration):

    dependencies = [("routing", "0021_verbose_names")]

    operations = [migrations.RunPython(create, drop)]

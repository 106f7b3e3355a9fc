"""The consortium file (docs/consortium-file.md): check it, import it, export it.

A coordinator describes a whole consortium in one YAML document: libraries with their hours,
partners and route plans, the shared queues, and the staff. Three steps, kept apart on purpose:

- `validate(data)` reads the parsed document without touching the database and returns *every*
  problem, each with its path in the file (``libraries[3].hours.tue[0]: "9-17" is not HH:MM-HH:MM``),
  so that a coordinator fixes a file in one round instead of one error per run.
- `apply(data, prune=...)` checks again, adds the few checks that need the database (a username
  owned by another consortium), and then writes everything in one transaction, or nothing.
  Rows are matched by slug and username and updated in place; a row whose values do not change
  is not saved, so re-importing the same file changes nothing and says so.
- `export(consortium)` writes the same format back, so import -> export -> import is a no-op.

Both `apply` and `export` go through one canonical form (`normalize`): defaults filled in, weekdays
in order, dates as `datetime.date`, empty optional fields left out. `export(apply(x))` equals
`normalize(x)`, up to the order of libraries and staff, which the database does not keep
(both are sorted: libraries by slug, staff by library then username).

Extensions to the documented format, all optional on a library: `city`, `website`,
`key_links: [{title, url}]`, `policy_reviewed: YYYY-MM-DD` (when the policy was last checked) and
`transcript_retention_days` (overrides the consortium's setting for this library's patrons' chats).
Shared queues may also carry `closures` and `special_hours`, like libraries.

The modules, one per step, and what they share:

- `schema`: the format's keys, patterns and limits, and a `Problem` with its path;
- `yaml_text`: YAML in (a key given twice is refused) and out (readable, diffable);
- `fields` and `validate`: read and validate (`validate`, `normalize`); `fields` reads single
  values (a slug, a date, a day's hours), `validate` the whole document;
- `importer`: import (`apply` and its `ImportReport`);
- `export`: export (`export`).
"""

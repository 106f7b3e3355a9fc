"""Admin for member libraries: libraries, queues and their hours, partners and staff.

Who sees what is decided in consortium/scoping.py. In short: a coordinator onboards and runs the
libraries of their consortium; a library admin keeps their own library's hours, policy page and
staff up to date, and nothing else.

One module per group of models, each registering its own: `hours` (weekly intervals, closures,
special hours, as inlines and on their own), `queues`, `libraries` (with partners and route plans)
and `staff` (profiles and the user accounts behind them); `common` holds what they share.
"""

from libraries.admin import hours, libraries, queues, staff  # noqa: F401  (each registers its models)

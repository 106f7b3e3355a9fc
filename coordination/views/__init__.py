"""The coordinator pages and the librarians' rota page, one module per page: check who asks, call a module,
render.

- board: the live board;
- hours: the grid of every queue's hours, one queue's hours editor, and its .ics;
- rota: the consortium's rota (coordinators);
- my_rota: a librarian's own shifts and swaps, and their calendar feed;
- coverage: demand against the librarians on the rota;
- statistics: the statistics page and its CSV tables.

Figures come from coordination.board / coverage / statistics; changes go through libraries.rota and
libraries.services. Every page but the calendar feed opens through `_page.staff_page`, which checks
sign-in and access (coordination.access) in one place.
"""

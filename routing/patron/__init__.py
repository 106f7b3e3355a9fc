"""What patrons use: the ask pages and the widget (`views`, `i18n`), the HTTP fallback transport and
chat files (`api`, `polling`). The patron's socket is routing.sockets.patron."""

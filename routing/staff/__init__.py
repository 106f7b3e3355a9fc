"""The staff console under /staff/: its pages and small JSON API (`views`, `urls`) and what they read
(`selectors`). The librarian's socket is routing.sockets.staff."""

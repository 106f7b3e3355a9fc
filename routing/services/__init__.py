"""Routing services: every write that a patron or librarian must hear about, one module per concept.

Each public function runs its writes in one transaction, with rows locked in a fixed order
(a librarian's presence before any chat; one chat at a time), publishes events only after commit
(routing.events), and then routes the chats its change affects, each in a transaction of its own.
The decisions themselves are made by routing.router; these modules load, apply and record them.

- `common`: the refusal, the trace and the decision log, locks, system messages, the end of a chat;
- `route`: the routing loop (decide and apply for a chat; re-route after a change);
- `chats`: starting a chat, its messages, ending it, its closing classification;
- `offers`: accepting and declining an offer;
- `transfers`: passing a chat on to a queue or a librarian;
- `presence`: librarians' presence, and the connections of librarians and patrons;
- `shifts`: the automatic away at the end of a librarian's shift;
- `followups`: follow-ups (tickets): referrals, the question form, claiming and answering;
- `blocks`: End and block (a chat's end and its patron's block, in one transaction), lift, extend;
- `mentoring`: mentors watching a chat, whispering to its librarian, joining it, taking it over;
- `sweeps`: the timer's work (deadlines, dead processes).

Callers import the module of the concept: `from routing.services import chats`.
"""

"""The sockets of docs/protocol.md: `base` (what both share), `patron` and `staff`."""

"""The sockets of spec/PROTOCOL.md: `base` (what both share), `patron` and `staff`."""

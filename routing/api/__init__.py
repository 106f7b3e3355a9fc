"""The HTTP API of docs/protocol.md: what every endpoint shares (`base`: JSON errors, CORS, access)
and the chat API's endpoints (`views`). The patron's transport endpoints are routing.patron.api."""

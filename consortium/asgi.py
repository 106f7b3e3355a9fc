"""ASGI entry point: HTTP through Django, WebSockets through Channels (patron and staff sockets)."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consortium.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddleware, get_user  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import CookieMiddleware, SessionMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402

from consortium import collector, twisted_writes  # noqa: E402
from consortium.clients import TrustedProxyMiddleware  # noqa: E402
from routing.admission import AdmissionMiddleware  # noqa: E402
from routing.availability import KeptAvailabilityMiddleware  # noqa: E402
from routing.threads import in_thread  # noqa: E402
from routing.ws_urls import websocket_urlpatterns  # noqa: E402


class SocketAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, looking the user up in the sockets' database threads.

    Channels does it on its single database thread, before the socket is accepted: in a reconnect
    storm every staff handshake of a process waited there behind the others, past daphne's
    handshake timeout (routing.threads, docs/benchmarks.md).
    """

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        scope["user"]._wrapped = await in_thread(get_user.func)(scope)


# Outermost: the client's address and scheme, from a trusted proxy's headers or the socket peer, for HTTP
# and WebSockets alike, before anything reads them (consortium/clients.py; daphne runs without --proxy-headers).
application = TrustedProxyMiddleware(ProtocolTypeRouter(
    {
        # Chat starts past this process's capacity are shed here, before Django's thread (routing/admission.py);
        # the launcher's availability, answered a moment ago, is answered again from memory (routing/availability.py).
        "http": KeptAvailabilityMiddleware(AdmissionMiddleware(django_asgi_app)),
        # The sockets start the same lag monitor (and pass through): a process's first start finds it measured.
        "websocket": AdmissionMiddleware(CookieMiddleware(SessionMiddleware(SocketAuthMiddleware(
            URLRouter(websocket_urlpatterns))))),
    }
))

# Under daphne: a frame goes to the client's socket when sent, not on the reactor's next turn
# (consortium/twisted_writes.py). Elsewhere (tests, another server) this does nothing.
if settings.VR_DIRECT_WRITES:
    twisted_writes.install()


# Under daphne's command line, everything loaded so far is frozen out of the garbage collector's scans
# and young collections run less often: a full collection stalled every socket of the process for
# 0.1-0.7 s at 1,000 chats (consortium/collector.py). manage.py serve does the same; tests do not.
if collector.under_daphne():
    collector.settle(settings.VR_GC_YOUNG)

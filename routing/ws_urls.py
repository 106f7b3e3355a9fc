from django.urls import path

from coordination.consumers import CoordinatorConsumer
from routing.sockets.patron import PatronConsumer
from routing.sockets.staff import StaffConsumer

websocket_urlpatterns = [
    path("ws/patron/", PatronConsumer.as_asgi()),
    path("ws/staff/", StaffConsumer.as_asgi()),
    path("ws/coordinator/", CoordinatorConsumer.as_asgi()),
]

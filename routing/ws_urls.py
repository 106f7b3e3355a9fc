from django.urls import path

from coordination.consumers import CoordinatorConsumer
from routing import consumers

websocket_urlpatterns = [
    path("ws/patron/", consumers.PatronConsumer.as_asgi()),
    path("ws/staff/", consumers.StaffConsumer.as_asgi()),
    path("ws/coordinator/", CoordinatorConsumer.as_asgi()),
]

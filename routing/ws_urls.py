from django.urls import path

from routing import consumers

websocket_urlpatterns = [
    path("ws/patron/", consumers.PatronConsumer.as_asgi()),
    path("ws/staff/", consumers.StaffConsumer.as_asgi()),
]

"""The staff console under /staff/ (included from consortium.urls)."""

from django.urls import path

import routing.converters  # noqa: F401  (the <id:...> converter)
from routing.staff import mentoring, views

urlpatterns = [
    path("", views.console, name="staff-console"),
    path("libraries/<slug:slug>/policy", views.library_policy, name="staff-library-policy"),
    path("api/presence", views.api_presence, name="staff-api-presence"),
    path("api/chats/<id:chat_id>", views.api_chat, name="staff-api-chat"),
    path("api/chats/<id:chat_id>/classify", views.api_classify, name="staff-api-classify"),
    path("api/chats/<id:chat_id>/block", views.api_block, name="staff-api-block"),
    path("tickets/", views.tickets, name="staff-tickets"),
    path("tickets/<str:ticket_id>/", views.ticket_detail, name="staff-ticket"),
    path("tickets/<str:ticket_id>/files/<str:file_id>", views.ticket_file, name="staff-ticket-file"),
    path("canned/", views.canned_list, name="staff-canned"),
    path("canned/<int:response_id>/", views.canned_edit, name="staff-canned-edit"),
    path("mentor/", mentoring.board, name="staff-mentor-board"),
    path("mentor/<id:chat_id>/", mentoring.watch, name="staff-mentor-watch"),
    path("history/", views.history, name="staff-history"),
    path("history/<str:chat_id>/", views.history_detail, name="staff-history-chat"),
]

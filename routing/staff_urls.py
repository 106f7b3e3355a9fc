"""The staff console under /staff/ (included from consortium.urls)."""

from django.urls import path

from routing import staff_views

urlpatterns = [
    path("", staff_views.console, name="staff-console"),
    path("libraries/<slug:slug>/policy", staff_views.library_policy, name="staff-library-policy"),
    path("api/presence", staff_views.api_presence, name="staff-api-presence"),
    path("api/chats/<str:chat_id>", staff_views.api_chat, name="staff-api-chat"),
    path("api/chats/<str:chat_id>/classify", staff_views.api_classify, name="staff-api-classify"),
    path("tickets/", staff_views.tickets, name="staff-tickets"),
    path("tickets/<str:ticket_id>/", staff_views.ticket_detail, name="staff-ticket"),
    path("history/", staff_views.history, name="staff-history"),
    path("history/<str:chat_id>/", staff_views.history_detail, name="staff-history-chat"),
]

"""The routing app's URLs: the chat API (routing.api) and what patrons use (routing.patron).
The staff console's are routing.staff.urls, the sockets' routing.ws_urls."""

from django.urls import path

import routing.converters  # noqa: F401  (the <id:...> converter)
from routing.api import openapi
from routing.api import views as api
from routing.patron import api as patron_api
from routing.patron import views as patron_views

urlpatterns = [
    path("api/v1/openapi.json", openapi.openapi_json, name="api-openapi"),
    path("api/v1/chats/<id:chat_id>/transcript", api.transcript, name="api-transcript"),
    path("api/v1/chats/<id:chat_id>/survey", api.survey, name="api-survey"),
    path("api/v1/chats/<id:chat_id>/trace", api.trace, name="api-trace"),
    path("api/v1/chats/<id:chat_id>", api.chat_delete, name="api-chat-delete"),
    path("api/v1/<slug:consortium_slug>/chats", api.chat_create, name="api-chat-create"),
    path("api/v1/<slug:consortium_slug>/questions", api.question_create, name="api-question-create"),
    path("api/v1/<slug:consortium_slug>/availability", api.availability, name="api-availability"),
    path("api/v1/<slug:consortium_slug>/reports/chats.csv", api.report_chats, name="api-report-chats"),
]

# Patrons: the ask pages, the widget, the HTTP fallback transport and chat files (routing.patron).
urlpatterns += [
    path("", patron_views.home, name="home"),
    path("ask/<slug:consortium_slug>/", patron_views.ask, name="ask"),
    path("ask/<slug:consortium_slug>/theme.css", patron_views.ask_theme, name="ask-theme"),
    path("ask/<slug:consortium_slug>/<slug:library_slug>/", patron_views.ask, name="ask-library"),
    path("widget.js", patron_views.widget_js, name="widget-js"),
    path("api/v1/<slug:consortium_slug>/widget", patron_views.widget_panel, name="api-widget-panel"),
    path("api/v1/chats/<id:chat_id>/events", patron_api.chat_events, name="api-chat-events"),
    path("api/v1/chats/<id:chat_id>/messages", patron_api.chat_message, name="api-chat-messages"),
    path("api/v1/chats/<id:chat_id>/typing", patron_api.chat_typing, name="api-chat-typing"),
    path("api/v1/chats/<id:chat_id>/end", patron_api.chat_end, name="api-chat-end"),
    path("api/v1/chats/<id:chat_id>/files", patron_api.chat_files, name="api-chat-files"),
    path("api/v1/chats/<id:chat_id>/files/<id:file_id>", patron_api.chat_file, name="api-chat-file"),
]

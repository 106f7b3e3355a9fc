from django.urls import path

from routing import api

urlpatterns = [
    path("api/v1/chats/<str:chat_id>/transcript", api.transcript, name="api-transcript"),
    path("api/v1/chats/<str:chat_id>/survey", api.survey, name="api-survey"),
    path("api/v1/chats/<str:chat_id>/trace", api.trace, name="api-trace"),
    path("api/v1/<slug:consortium_slug>/chats", api.chat_create, name="api-chat-create"),
    path("api/v1/<slug:consortium_slug>/questions", api.question_create, name="api-question-create"),
    path("api/v1/<slug:consortium_slug>/reports/chats.csv", api.report_chats, name="api-report-chats"),
]

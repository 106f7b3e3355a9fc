"""The knowledge base's addresses (included from consortium.urls): public pages and the patron API,
the staff pages under /staff/answers/ and the console's /staff/api/chats/<id>/answers."""

from django.urls import path

import routing.converters  # noqa: F401  (the <id:...> converter)
from knowledge import staff_views, views

urlpatterns = [
    path("answers/<slug:consortium_slug>/", views.answers_page, name="answers"),
    path("answers/<slug:consortium_slug>/a/<int:answer_id>/", views.answer_page, name="answer"),
    path("answers/<slug:consortium_slug>/<slug:library_slug>/", views.answers_page, name="answers-library"),
    path("api/v1/<slug:consortium_slug>/answers", views.suggestions, name="api-answers"),
    path("api/v1/chats/<id:chat_id>/self-served", views.self_served, name="api-chat-self-served"),
    path("staff/answers/", staff_views.answers_list, name="staff-answers"),
    path("staff/answers/new", staff_views.answer_new, name="staff-answer-new"),
    path("staff/answers/<int:answer_id>/", staff_views.answer_edit, name="staff-answer"),
    path("staff/api/chats/<id:chat_id>/answers", staff_views.api_chat_answers, name="staff-api-chat-answers"),
]

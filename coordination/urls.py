"""Coordinator pages under /coordinator/<consortium>/, and the librarians' rota under /rota/."""

from django.urls import path

from coordination import views

urlpatterns = [
    path("coordinator/<slug:consortium_slug>/", views.board_page, name="coordination-board"),
    path("coordinator/<slug:consortium_slug>/hours/", views.hours_grid, name="coordination-hours"),
    path("coordinator/<slug:consortium_slug>/hours/<slug:queue_slug>/", views.hours_edit,
         name="coordination-hours-edit"),
    path("coordinator/<slug:consortium_slug>/hours/<slug:queue_slug>.ics", views.hours_ics,
         name="coordination-hours-ics"),
    path("coordinator/<slug:consortium_slug>/rota/", views.rota_page, name="coordination-rota"),
    path("coordinator/<slug:consortium_slug>/coverage/", views.coverage_page, name="coordination-coverage"),
    path("coordinator/<slug:consortium_slug>/statistics/", views.statistics_page, name="coordination-statistics"),
    path("rota/", views.my_rota, name="coordination-my-rota"),
    path("rota/feed/<str:token>.ics", views.rota_feed, name="coordination-feed"),
]

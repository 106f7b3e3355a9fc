"""Coordinator pages under /coordinator/<consortium>/, and the librarians' rota under /rota/."""

from django.urls import path

from coordination.views import blocks, board, coverage, followups, hours, mentors, my_rota, rota, statistics

urlpatterns = [
    path("coordinator/<slug:consortium_slug>/", board.board_page, name="coordination-board"),
    path("coordinator/<slug:consortium_slug>/hours/", hours.hours_grid, name="coordination-hours"),
    path("coordinator/<slug:consortium_slug>/hours/<slug:queue_slug>/", hours.hours_edit,
         name="coordination-hours-edit"),
    path("coordinator/<slug:consortium_slug>/hours/<slug:queue_slug>.ics", hours.hours_ics,
         name="coordination-hours-ics"),
    path("coordinator/<slug:consortium_slug>/rota/", rota.rota_page, name="coordination-rota"),
    path("coordinator/<slug:consortium_slug>/rota/what-if", rota.rota_what_if, name="coordination-rota-what-if"),
    path("coordinator/<slug:consortium_slug>/coverage/", coverage.coverage_page, name="coordination-coverage"),
    path("coordinator/<slug:consortium_slug>/statistics/", statistics.statistics_page,
         name="coordination-statistics"),
    path("coordinator/<slug:consortium_slug>/blocks/", blocks.blocks_page, name="coordination-blocks"),
    path("coordinator/<slug:consortium_slug>/blocks/<int:block_id>/", blocks.block_page, name="coordination-block"),
    path("coordinator/<slug:consortium_slug>/mentors/", mentors.mentors_page, name="coordination-mentors"),
    path("coordinator/<slug:consortium_slug>/follow-ups/overdue/", followups.overdue_page,
         name="coordination-overdue"),
    path("rota/", my_rota.my_rota, name="coordination-my-rota"),
    path("rota/feed/<str:token>.ics", my_rota.rota_feed, name="coordination-feed"),
]

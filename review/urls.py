"""Transcript review's pages (included from consortium.urls)."""

from django.urls import path

from review import views

urlpatterns = [
    path("staff/reviews/", views.reviews_home, name="review-home"),
    path("staff/reviews/notable/", views.notable, name="review-notable"),
    path("staff/reviews/<int:review_id>/", views.review_detail, name="review-detail"),
    path("staff/reviews/<int:review_id>/notable", views.review_notable, name="review-mark-notable"),
    path("coordinator/<slug:consortium_slug>/reviews/", views.coordinator_reviews, name="review-coordinator"),
    path("coordinator/<slug:consortium_slug>/reviews/<int:review_id>/reassign", views.coordinator_reassign,
         name="review-coordinator-reassign"),
    path("coordinator/<slug:consortium_slug>/reviews/settings/", views.coordinator_settings,
         name="review-coordinator-settings"),
]

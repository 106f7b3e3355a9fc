from django.contrib import admin
from django.urls import include, path

from consortium import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("routing.urls")),
]

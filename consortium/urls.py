from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from consortium import views
from consortium.language import staff_language_set
from consortium.signin import ThrottledPasswordResetView
from routing import metrics

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),  # Prometheus; only for METRICS_ALLOWED_IPS
    path("admin/", admin.site.urls),
    # Before Django's own: the same view, throttled per client and per address (consortium/signin.py).
    path("accounts/password_reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("staff/language", staff_language_set, name="staff-language"),  # consortium/language.py
    path("", include("routing.urls")),
    path("staff/", include("routing.staff.urls")),
    path("", include("knowledge.urls")),  # the knowledge base (issue 17): /answers/, /staff/answers/
    path("", include("review.urls")),  # transcript review: /staff/reviews/, /coordinator/<slug>/reviews/
    path("", include("coordination.urls")),
    path("", include("texting.urls")),  # texting (docs/sms.md): Twilio's webhook
    # Static files straight from the apps: nginx serves them in a real deployment (deploy/nginx).
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]

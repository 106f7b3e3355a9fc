from django.urls import path

from texting import views

urlpatterns = [
    path("sms/twilio/", views.twilio_webhook, name="sms-twilio"),
    path("sms/files/<str:token>/", views.file_link, name="sms-file"),
]

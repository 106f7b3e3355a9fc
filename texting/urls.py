from django.urls import path

from texting import views

urlpatterns = [
    path("sms/twilio/", views.twilio_webhook, name="sms-twilio"),
    path("sms/files/<str:token>/", views.file_link, name="sms-file"),
    # The demo's simulator: 404 unless VR_SMS_SIMULATOR in the embedded default (texting.simulator).
    path("sms/simulator/", views.simulator_page, name="sms-simulator"),
    path("sms/simulator/texts", views.simulator_texts, name="sms-simulator-texts"),
    path("sms/simulator/send", views.simulator_send, name="sms-simulator-send"),
]

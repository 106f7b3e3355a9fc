"""Texting end to end in one process (docs/sms.md): the signed webhook, routing as for web chats,
replies through a local fake of Twilio's API, keywords, the unstaffed reply, sms_idle, retries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from routing.models import Channel, Chat, ChatState, Message, Ticket
from routing.services import chats, followups, offers, route
from routing.services.common import ServiceError
from tests.factories import make_staff
from tests.routing.routing_helpers import Sent, go_online, world
from tests.texting.conftest import PUBLIC_URL, WEBHOOK, post_text, signed, text_params
from tests.texting.fake_twilio import FakeTwilio
from texting import signature
from texting.models import InboundText, OutboundText, SmsPatron

pytestmark = pytest.mark.django_db(transaction=True)

HOME_NUMBER = "+13055550100"
CONSORTIUM_NUMBER = "+18505550100"
PHONE = "+13055550123"


def texting_world(**fields: Any) -> Any:
    w = world(**fields)
    w.consortium.sms_number = CONSORTIUM_NUMBER
    w.consortium.save(update_fields=["sms_number"])
    w.home.sms_number = HOME_NUMBER
    w.home.save(update_fields=["sms_number"])
    w.partner.sms_keyword = "PARTNER"
    w.partner.save(update_fields=["sms_keyword"])
    return w


def nothing_stored() -> bool:
    return not (InboundText.objects.exists() or Chat.objects.exists() or SmsPatron.objects.exists())


# --- the signature ----------------------------------------------------------------------------------


def test_twilios_documented_example_signature_is_valid(settings: Any) -> None:
    # Twilio's documentation: auth token 12345, this URL and these parameters sign to this value.
    settings.TWILIO_AUTH_TOKEN = "12345"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675310", "Digits": "1234",
              "From": "+14158675310", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature.is_valid(url, params, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not signature.is_valid(url, {**params, "Digits": "1235"}, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not signature.is_valid(url, params, "")


@pytest.mark.parametrize("how", ["missing", "wrong token", "other url", "altered body"])
def test_an_invalid_signature_is_403_and_nothing_is_stored(twilio: FakeTwilio, client: Client, how: str) -> None:
    texting_world()
    params = text_params("Do you have museum passes?", to=HOME_NUMBER)
    sig = {"missing": "", "wrong token": signed(params, token="not-the-token"),
           "other url": signed(params, url="https://evil.example.org" + WEBHOOK),
           "altered body": signed({**params, "Body": "something else"})}[how]
    response = post_text(client, params, signature=sig)
    assert response.status_code == 403
    assert nothing_stored()
    assert twilio.requests == 0


def test_texting_without_credentials_is_off(client: Client, settings: Any) -> None:
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    assert client.post(WEBHOOK, {"MessageSid": "SM1"}).status_code == 404
    assert client.get(WEBHOOK).status_code == 404


def test_the_webhook_takes_only_post(twilio: FakeTwilio, client: Client) -> None:
    assert client.get(WEBHOOK).status_code == 405


def test_a_text_to_an_unknown_number_is_200_and_nothing_is_stored(twilio: FakeTwilio, client: Client,
                                                                   caplog: Any) -> None:
    texting_world()
    response = post_text(client, text_params("hello", to="+19995550100"))
    assert response.status_code == 200 and response["Content-Type"] == "text/xml"
    assert nothing_stored()
    assert "no consortium's or library's number" in caplog.text


# --- a text becomes a chat, routed as web chats are ---------------------------------------------------


def test_a_text_to_a_library_number_is_offered_to_its_librarian_with_channel_sms(
        twilio: FakeTwilio, client: Client, sent: Sent) -> None:
    w = texting_world()
    lena = make_staff(w.home, "lena")
    go_online(lena, timezone.now())
    params = text_params("Do you have museum passes?", to=HOME_NUMBER)
    response = post_text(client, params)
    assert response.status_code == 200
    assert response.content.decode().endswith("<Response/>")
    chat = Chat.objects.get()
    assert (chat.channel, chat.home_library, chat.state) == (Channel.SMS, w.home, ChatState.QUEUED)
    assert chat.patron_name == "...0123"  # the last four digits, all staff are shown
    offer = sent.to_librarian(lena, "offer")[0]
    assert offer["channel"] == "sms" and offer["patron"]["name"] == "...0123"
    assert offer["question"] == "Do you have museum passes?" and offer["step"] == "local"

    # The provider retries the same MessageSid: stored once.
    assert post_text(client, params).status_code == 200
    assert InboundText.objects.count() == 1 and Chat.objects.count() == 1
    assert Message.objects.filter(chat=chat).count() == 1

    # The librarian answers: one text, from the library's number to the patron's phone.
    offers.chat_accept(lena, chat.pk, timezone.now())
    chats.message_post(chat.pk, sender="librarian", body="Yes, at the front desk.", client_id="c1",
                       now=timezone.now(), librarian=lena)
    chats.message_post(chat.pk, sender="librarian", body="Yes, at the front desk.", client_id="c1",
                       now=timezone.now(), librarian=lena)  # the console sent it again
    chats.message_post(chat.pk, sender="librarian", body="A note for staff", client_id="c2",
                       now=timezone.now(), librarian=lena, internal=True)
    [text] = twilio.wait_for(1)
    assert (text.to, text.from_, text.body) == (PHONE, HOME_NUMBER, "Yes, at the front desk.")
    assert twilio.requests == 1
    out = OutboundText.objects.get()
    assert (out.status, out.provider_sid, out.tries) == ("sent", text.sid, 1)

    # The patron texts again: the same chat.
    post_text(client, text_params("Thanks! How many?", to=HOME_NUMBER))
    assert Chat.objects.count() == 1
    assert [m.body for m in Message.objects.filter(chat=chat, sender="patron")] == [
        "Do you have museum passes?", "Thanks! How many?"]


def test_a_keyword_to_the_consortium_number_names_the_home_library(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world()
    post_text(client, text_params("partner Is the library open Sunday?", to=CONSORTIUM_NUMBER))
    chat = Chat.objects.get()
    assert chat.home_library == w.partner and chat.question == "Is the library open Sunday?"


def test_a_text_to_the_consortium_number_without_keyword_has_no_home_library(
        twilio: FakeTwilio, client: Client) -> None:
    texting_world()
    post_text(client, text_params("Where can I find tax forms?", to=CONSORTIUM_NUMBER))
    chat = Chat.objects.get()
    assert chat.home_library is None and [s["name"] for s in chat.plan] == ["consortium"]


@pytest.mark.parametrize(("body", "language", "question"), [
    ("¿Tienen libros en español para niños?", "es", "¿Tienen libros en español para niños?"),
    ("Hola, necesito ayuda con mi tarjeta", "es", "Hola, necesito ayuda con mi tarjeta"),
    ("ESPAÑOL where are the forms", "es", "where are the forms"),
    ("Do you have books in Spanish for kids?", "", "Do you have books in Spanish for kids?"),
])
def test_a_text_in_spanish_is_a_spanish_chat(twilio: FakeTwilio, client: Client, body: str, language: str,
                                              question: str) -> None:
    texting_world()
    post_text(client, text_params(body, to=HOME_NUMBER))
    chat = Chat.objects.get()
    assert (chat.language, chat.question) == (language, question)


# --- keywords ------------------------------------------------------------------------------------------


def test_stop_ends_the_chat_and_silences_the_number_until_start(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world()
    lena = make_staff(w.home, "lena")
    go_online(lena, timezone.now())
    post_text(client, text_params("Do you have museum passes?", to=HOME_NUMBER))
    chat = Chat.objects.get()
    offers.chat_accept(lena, chat.pk, timezone.now())
    post_text(client, text_params("stop", to=HOME_NUMBER))
    chat.refresh_from_db()
    assert (chat.state, chat.end_reason) == (ChatState.ENDED, "opted_out")
    assert SmsPatron.objects.get().opted_out_at is not None
    # Nothing goes to the phone: no closing text, and a text for it is suppressed, not sent.
    post_text(client, text_params("HELP", to=HOME_NUMBER))
    assert OutboundText.objects.get(kind="help").status == "suppressed"
    assert twilio.requests == 0 and not OutboundText.objects.filter(kind="closing").exists()

    post_text(client, text_params("Start", to=HOME_NUMBER))
    post_text(client, text_params("info", to=HOME_NUMBER))
    [help_text] = twilio.wait_for(1)
    assert "Reply STOP to stop" in help_text.body and help_text.from_ == HOME_NUMBER
    assert Chat.objects.count() == 1  # keywords start no chat


def test_help_answers_the_consortiums_sms_help(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world()
    w.consortium.sms_help = "Vr Ask: text a librarian. STOP to stop."
    w.consortium.save(update_fields=["sms_help"])
    post_text(client, text_params(" Help ", to=CONSORTIUM_NUMBER))
    [text] = twilio.wait_for(1)
    assert (text.body, text.from_, text.to) == ("Vr Ask: text a librarian. STOP to stop.", CONSORTIUM_NUMBER, PHONE)


# --- nobody on duty ------------------------------------------------------------------------------------


def test_a_text_when_nobody_is_on_duty_gets_the_hours_and_becomes_a_follow_up(
        twilio: FakeTwilio, client: Client) -> None:
    w = texting_world()
    post_text(client, text_params("Can I renew by text?", to=HOME_NUMBER))
    chat = Chat.objects.get()
    assert chat.state == ChatState.UNSTAFFED
    ticket = Ticket.objects.get()
    assert (ticket.library, ticket.source, ticket.question, ticket.chat) == (w.home, "sms", "Can I renew by text?",
                                                                            chat)
    [text] = twilio.wait_for(1)
    assert text.from_ == HOME_NUMBER and text.to == PHONE
    assert "nobody can answer right now" in text.body and f"{PUBLIC_URL}/ask/vr/home/" in text.body

    # More texts add to that follow-up, with no second automatic reply.
    post_text(client, text_params("It's the book on bees", to=HOME_NUMBER))
    ticket.refresh_from_db()
    assert ticket.question == "Can I renew by text?\n\nIt's the book on bees"
    assert Ticket.objects.count() == 1 and Chat.objects.count() == 1
    assert OutboundText.objects.count() == 1

    # A librarian answers the follow-up: by text, not by mail.
    lena = make_staff(w.home, "lena")
    followups.followup_answer(lena, ticket.pk, "Yes: text RENEW and your card number.", timezone.now())
    texts = twilio.wait_for(2)
    assert texts[1].body == "Yes: text RENEW and your card number." and texts[1].to == PHONE


def test_a_closed_library_says_when_it_opens(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world()
    from tests.factories import set_weekly_hours

    set_weekly_hours(w.home.local_queue, {0: [(540, 1020)]})  # Mondays 09:00-17:00 only
    for lib in (w.partner, w.hub):
        set_weekly_hours(lib.local_queue, {})
    set_weekly_hours(w.statewide, {})
    post_text(client, text_params("Are you open?", to=HOME_NUMBER))
    [text] = twilio.wait_for(1)
    assert "We open again Mon 09:00 (E" in text.body  # EST or EDT, by the date the test runs


# --- limits and sending ------------------------------------------------------------------------------


def held_sms_chat(client: Client, w: Any) -> tuple[Any, Chat]:
    lena = make_staff(w.home, "lena")
    go_online(lena, timezone.now())
    post_text(client, text_params("Do you have museum passes?", to=HOME_NUMBER))
    chat = Chat.objects.get()
    offers.chat_accept(lena, chat.pk, timezone.now())
    return lena, chat


def test_a_reply_over_1600_characters_is_refused_and_nothing_is_sent(twilio: FakeTwilio, client: Client) -> None:
    lena, chat = held_sms_chat(client, texting_world())
    with pytest.raises(ServiceError) as refused:
        chats.message_post(chat.pk, sender="librarian", body="x" * 1601, client_id="c1", now=timezone.now(),
                           librarian=lena)
    assert refused.value.reason == "too_long"
    assert not Message.objects.filter(chat=chat, sender="librarian").exists()
    chats.message_post(chat.pk, sender="librarian", body="x" * 1600, client_id="c2", now=timezone.now(),
                       librarian=lena)
    assert len(twilio.wait_for(1)[0].body) == 1600


def test_500_twice_then_201_delivers_the_reply_once(twilio: FakeTwilio, client: Client, sent: Sent) -> None:
    lena, chat = held_sms_chat(client, texting_world())
    twilio.answer_next(500, 500)
    chats.message_post(chat.pk, sender="librarian", body="Here you go", client_id="c1", now=timezone.now(),
                       librarian=lena)
    [text] = twilio.wait_for(1)
    assert text.body == "Here you go" and twilio.requests == 3
    out = OutboundText.objects.get()
    assert (out.status, out.tries) == ("sent", 3)
    assert sent.to_chat(chat, "delivery")[-1]["status"] == "delivered"


def test_a_timeout_is_tried_again(twilio: FakeTwilio, client: Client) -> None:
    lena, chat = held_sms_chat(client, texting_world())
    twilio.answer_next("timeout")
    chats.message_post(chat.pk, sender="librarian", body="Here you go", client_id="c1", now=timezone.now(),
                       librarian=lena)
    twilio.wait_for(1)
    assert OutboundText.objects.get().tries == 2


def test_every_try_failing_shows_the_line_as_not_delivered(twilio: FakeTwilio, client: Client, sent: Sent,
                                                           settings: Any) -> None:
    lena, chat = held_sms_chat(client, texting_world())
    twilio.answer_next(*[503] * (len(settings.TWILIO_RETRY_DELAYS) + 1))
    message, _ = chats.message_post(chat.pk, sender="librarian", body="Here you go", client_id="c1",
                                    now=timezone.now(), librarian=lena)
    out = OutboundText.objects.get()
    assert (out.status, out.tries) == ("failed", len(settings.TWILIO_RETRY_DELAYS) + 1)
    assert "HTTP 503" in out.last_error
    failed = sent.to_chat(chat, "delivery")[-1]
    assert (failed["status"], failed["seq"]) == ("not_delivered", message.seq)
    assert twilio.sent == []


def test_a_refusal_is_not_tried_again(twilio: FakeTwilio, client: Client) -> None:
    lena, chat = held_sms_chat(client, texting_world())
    twilio.answer_next(400)
    chats.message_post(chat.pk, sender="librarian", body="Here you go", client_id="c1", now=timezone.now(),
                       librarian=lena)
    out = OutboundText.objects.get()
    assert (out.status, out.tries, twilio.requests) == ("failed", 1, 1)


def test_past_ten_texts_a_minute_to_one_phone_a_text_waits_its_turn(twilio: FakeTwilio, client: Client) -> None:
    from texting.outbound import deliver

    lena, chat = held_sms_chat(client, texting_world())
    for i in range(10):
        chats.message_post(chat.pk, sender="librarian", body=f"line {i}", client_id=f"c{i}", now=timezone.now(),
                           librarian=lena)
    twilio.wait_for(10)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("texting.tasks.send_text.delay", lambda text_id: None)  # the worker is busy: look at it below
        chats.message_post(chat.pk, sender="librarian", body="line 10", client_id="c10", now=timezone.now(),
                           librarian=lena)
    held = OutboundText.objects.get(body="line 10")
    outcome = deliver(held.pk)
    assert outcome.retry_in is not None and outcome.status == "queued"
    held.refresh_from_db()
    assert held.tries == 0  # waiting its turn is no try
    assert deliver(held.pk, timezone.now() + timedelta(seconds=61)).status == "sent"
    assert len(twilio.sent) == 11


# --- sms_idle ----------------------------------------------------------------------------------------


def test_an_sms_chat_ends_after_sms_idle_with_one_closing_text(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world(sms_idle=600, idle_timeout=60)
    _lena, chat = held_sms_chat(client, w)
    chat.refresh_from_db()
    # idle_timeout (web chats) passes: an SMS chat stays.
    route.chat_route(chat.pk, chat.last_activity_at + timedelta(seconds=61))
    chat.refresh_from_db()
    assert chat.state == ChatState.ACTIVE
    assert chat.deadline == chat.last_activity_at + timedelta(seconds=600)
    route.chat_route(chat.pk, chat.last_activity_at + timedelta(seconds=600))
    chat.refresh_from_db()
    assert (chat.state, chat.end_reason) == (ChatState.ENDED, "idle")
    [text] = twilio.wait_for(1)
    assert "ended" in text.body and text.from_ == HOME_NUMBER
    route.chat_route(chat.pk, chat.last_activity_at + timedelta(seconds=1200))
    assert OutboundText.objects.filter(kind="closing").count() == 1


# --- MMS ---------------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_a_picture_is_fetched_checked_stored_and_shown_and_anything_else_refused(
        twilio: FakeTwilio, client: Client, sent: Sent) -> None:
    w = texting_world()
    go_online(make_staff(w.home, "lena"), timezone.now())  # someone on duty: the chat waits, live
    picture = twilio.add_media(PNG)
    post_text(client, text_params("What is this plant?", to=HOME_NUMBER, NumMedia="1", MediaUrl0=picture,
                                  MediaContentType0="image/png"))
    chat = Chat.objects.get()
    stored = Message.objects.get(chat=chat, file__isnull=False)
    assert stored.sender == "patron" and stored.file.content_type == "image/png" and stored.file.size == len(PNG)
    assert sent.to_chat(chat, "message")[-1]["file"]["type"] == "image/png"  # shown in the console

    # A contact card is no picture: refused, with one text saying so.
    card = twilio.add_media(b"BEGIN:VCARD\nVERSION:3.0\nEND:VCARD\n")
    post_text(client, text_params("", to=HOME_NUMBER, NumMedia="1", MediaUrl0=card, MediaContentType0="text/vcard"))
    [refusal] = twilio.wait_for(1)
    assert "only pictures" in refusal.body and refusal.from_ == HOME_NUMBER
    assert Message.objects.filter(chat=chat, file__isnull=False).count() == 1
    assert w.consortium.sms_patrons.count() == 1


def test_a_text_whose_task_was_lost_is_sent_by_the_sweep_once(twilio: FakeTwilio, client: Client) -> None:
    from texting.tasks import STUCK_AFTER, texts_resend_stuck

    lena, chat = held_sms_chat(client, texting_world())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("texting.tasks.send_text.delay", lambda text_id: None)  # the broker lost the task
        chats.message_post(chat.pk, sender="librarian", body="Lost, then found", client_id="c1",
                           now=timezone.now(), librarian=lena)
    assert texts_resend_stuck() == 0  # too young: its task may still be trying
    OutboundText.objects.update(created_at=timezone.now() - timedelta(seconds=STUCK_AFTER + 1))
    assert texts_resend_stuck() == 1
    assert [t.body for t in twilio.wait_for(1)] == ["Lost, then found"]
    assert texts_resend_stuck() == 0 and twilio.requests == 1


def test_a_texted_question_nobody_takes_within_sms_idle_becomes_a_follow_up(
        twilio: FakeTwilio, client: Client) -> None:
    from texting.idle import queued_sms_chats_expire

    w = texting_world(sms_idle=600)
    go_online(make_staff(w.home, "lena"), timezone.now())  # on duty, but never takes it
    post_text(client, text_params("Is the 1890 census online?", to=HOME_NUMBER))
    chat = Chat.objects.get()
    assert chat.state == ChatState.QUEUED
    assert queued_sms_chats_expire(chat.last_activity_at + timedelta(seconds=599)) == 0
    assert queued_sms_chats_expire(chat.last_activity_at + timedelta(seconds=600)) == 1
    chat.refresh_from_db()
    assert (chat.state, chat.end_reason) == (ChatState.ENDED, "unanswered")
    ticket = Ticket.objects.get()
    assert (ticket.chat, ticket.library, ticket.source) == (chat, w.home, "sms")
    [text] = twilio.wait_for(1)
    assert "a librarian will text you back" in text.body
    assert queued_sms_chats_expire(chat.last_activity_at + timedelta(seconds=1200)) == 0


PDF = b"%PDF-1.4\n" + b"%" * 64


def test_files_sent_with_a_text_nobody_can_answer_are_kept_for_its_follow_up(
        twilio: FakeTwilio, client: Client, sent: Sent) -> None:
    from texting.media import take

    w = texting_world()
    picture = twilio.add_media(PNG)
    post_text(client, text_params("What is this plant?", to=HOME_NUMBER, NumMedia="1", MediaUrl0=picture,
                                  MediaContentType0="image/png"))
    ticket = Ticket.objects.get()
    chat = Chat.objects.get()
    assert chat.state == ChatState.UNSTAFFED and ticket.chat == chat
    [kept] = Message.objects.filter(chat=chat, file__isnull=False)
    assert (kept.sender, kept.file.content_type, kept.file.size, kept.file.uploaded_by) == (
        "patron", "image/png", len(PNG), "patron")
    assert kept.file.data.read() == PNG
    assert sent.to_chat(chat, "message")[-1]["channel"] == "sms"

    # A text added to the follow-up: its words go to the question, its files are kept as well;
    # anything that is no picture is still refused with a text (and the rest of that text is kept).
    card = twilio.add_media(b"BEGIN:VCARD\nVERSION:3.0\nEND:VCARD\n")
    leaf = twilio.add_media(PDF)
    params = text_params("", to=HOME_NUMBER, NumMedia="2", MediaUrl0=card, MediaContentType0="text/vcard",
                         MediaUrl1=leaf, MediaContentType1="application/pdf")
    post_text(client, params)
    ticket.refresh_from_db()
    assert ticket.question == "What is this plant?\n\n(2 file(s) sent by text)"
    assert Ticket.objects.count() == 1 and Chat.objects.count() == 1
    assert InboundText.objects.get(message_sid=params["MessageSid"]).kind == InboundText.Kind.FOLLOWUP
    files = [m.file for m in Message.objects.filter(chat=chat, file__isnull=False).order_by("seq")]
    assert [f.content_type for f in files] == ["image/png", "application/pdf"]
    texts = twilio.wait_for(2)  # the unstaffed reply, then the refusal
    assert "only pictures" in texts[1].body and texts[1].from_ == HOME_NUMBER
    # The task run again (a worker that died before acknowledging it): nothing twice.
    assert take(InboundText.objects.get(message_sid=params["MessageSid"]).pk) == 1
    assert Message.objects.filter(chat=chat, file__isnull=False).count() == 2
    assert OutboundText.objects.filter(kind=OutboundText.Kind.REFUSED).count() == 1

    # Whoever answers the follow-up sees the files on its page and opens them from there.
    lena = make_staff(w.home, "lena")
    client.force_login(lena.user)
    page = client.get(f"/staff/tickets/{ticket.pk}/").content.decode()
    for f in files:
        assert f"/staff/tickets/{ticket.pk}/files/{f.pk}" in page
    opened = client.get(f"/staff/tickets/{ticket.pk}/files/{files[0].pk}")
    assert opened.status_code == 200 and opened.content == PNG and opened["Content-Type"] == "image/png"
    assert opened["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/api/v1/chats/{chat.pk}/files/{files[1].pk}").status_code == 200  # the chat's own link

    # Not to staff of a library the follow-up is not for, nor another chat's files by this address.
    client.force_login(make_staff(w.partner, "pia").user)
    assert client.get(f"/staff/tickets/{ticket.pk}/files/{files[0].pk}").status_code == 404
    client.force_login(lena.user)
    other, _ = chats.chat_start(consortium=w.consortium, question="web", library_slug="home", now=timezone.now())
    from routing.models import ChatFile

    stranger = ChatFile.objects.create(chat=other, name="x.png", content_type="image/png", size=1,
                                       uploaded_by="patron", created_at=timezone.now(), data=files[0].data.name)
    assert client.get(f"/staff/tickets/{ticket.pk}/files/{stranger.pk}").status_code == 404


def test_files_of_a_text_whose_chat_ended_before_they_were_fetched_are_kept_in_it(
        twilio: FakeTwilio, client: Client) -> None:
    lena, chat = held_sms_chat(client, texting_world())
    picture = twilio.add_media(PNG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("texting.tasks.take_media.delay", lambda inbound_id: None)  # the worker is late
        params = text_params("Here it is", to=HOME_NUMBER, NumMedia="1", MediaUrl0=picture,
                             MediaContentType0="image/png")
        post_text(client, params)
    chats.chat_end(chat.pk, timezone.now(), by="librarian", librarian=lena)
    from texting.media import take

    assert take(InboundText.objects.get(message_sid=params["MessageSid"]).pk) == 1
    [kept] = Message.objects.filter(chat=chat, file__isnull=False)
    assert kept.sender == "patron" and kept.file.content_type == "image/png"
    assert Chat.objects.get(pk=chat.pk).state == ChatState.ENDED  # kept, nothing reopened

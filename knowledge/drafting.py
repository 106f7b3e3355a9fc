"""Save as answer: a draft prefilled from a chat, with the patron's identity removed.

The text is read through review.transcript, the one scrubbed view of a chat: the patron's name,
email address and phone number, and any address, phone or card-like number typed, are replaced by
placeholders; internal notes and files are left out. The librarian edits the draft before saving,
and nothing links the saved answer back to the chat.
"""

from __future__ import annotations

from knowledge.models import AnswerLanguage
from knowledge.services import CONSORTIUM_SCOPE, AnswerFields
from libraries.models import StaffProfile
from review import transcript
from routing.models import Chat, Message


def draft_from_chat(profile: StaffProfile, chat: Chat) -> AnswerFields:
    """The form's first values: the patron's question, the librarians' replies as the answer."""
    replies = [line.body for line in transcript.lines(chat) if line.sender == Message.Sender.LIBRARIAN and line.body]
    language = chat.language if chat.language in AnswerLanguage.values else AnswerLanguage.EN
    own = chat.home_library_id is not None and chat.home_library_id == profile.library_id
    return AnswerFields(question=transcript.question(chat)[:300], body="\n\n".join(replies), language=language,
                        scope=profile.library.slug if own else CONSORTIUM_SCOPE)

"""Who may do what with an answer: one answer for the pages, the console and the services.

- Every librarian of the consortium reads all its answers (drafts too: the console marks them) and
  writes drafts for their own library or for the whole consortium; they edit the drafts they own.
- A library admin publishes, retires and edits their own library's answers.
- A coordinator publishes, retires and edits the consortium's answers (those of no library).
- Patrons read published answers only (knowledge.selectors), never drafts or retired ones.
"""

from __future__ import annotations

from knowledge.models import Answer, AnswerState
from libraries.models import Library, StaffProfile


def may_publish(profile: StaffProfile, answer: Answer) -> bool:
    if answer.consortium_id != profile.library.consortium_id:
        return False
    if answer.library_id is None:
        return profile.role == StaffProfile.Role.COORDINATOR
    return profile.role == StaffProfile.Role.LIBRARY_ADMIN and answer.library_id == profile.library_id


def may_edit(profile: StaffProfile, answer: Answer) -> bool:
    if answer.consortium_id != profile.library.consortium_id:
        return False
    own_draft = answer.owner_id == profile.pk and answer.state == AnswerState.DRAFT
    return own_draft or may_publish(profile, answer)


def writable_libraries(profile: StaffProfile) -> list[Library]:
    """The libraries whose answers this librarian may draft (besides the consortium's): their own."""
    return [profile.library]

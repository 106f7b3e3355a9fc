"""A small consortium with answers for the knowledge base's tests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from consortium.models import Consortium
from knowledge.models import Answer, AnswerState
from libraries.models import Library, StaffProfile
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("America/New_York"))


def answer(consortium: Consortium, question: str, body: str, *, library: Library | None = None,
           language: str = "en", keywords: str = "", state: str = AnswerState.PUBLISHED,
           owner: StaffProfile | None = None, review_on: date = date(2027, 6, 1)) -> Answer:
    return Answer.objects.create(consortium=consortium, library=library, question=question, body=body,
                                 language=language, keywords=keywords, state=state, owner=owner, review_on=review_on,
                                 created_at=NOW, updated_at=NOW, published_at=NOW)


def kb_world() -> dict[str, Any]:
    consortium = make_consortium("kb", allowed_origins=["https://www.alpha-library.org"])
    make_shared_queue(consortium, "statewide")
    alpha, beta = make_library(consortium, "alpha"), make_library(consortium, "beta")
    other = make_consortium("elsewhere")
    far = make_library(other, "far")
    w: dict[str, Any] = {
        "consortium": consortium, "alpha": alpha, "beta": beta, "other": other,
        "librarian": make_staff(alpha, "lib-a"), "admin": make_staff(alpha, "admin-a", role="library_admin"),
        "admin_b": make_staff(beta, "admin-b", role="library_admin"),
        "coordinator": make_staff(beta, "coord", role="coordinator"),
        "outsider": make_staff(far, "outsider", role="coordinator"),
    }
    w["renew"] = answer(consortium, "How do I renew my library books?",
                        "Sign in to **My Account** and press Renew. See [renewals](https://lib.example.org/renew).",
                        keywords="renew, renewal, extend, due date")
    w["card"] = answer(consortium, "How do I get a library card?", "Bring a photo ID to any branch.",
                       keywords="library card, sign up, register")
    w["renew_es"] = answer(consortium, "¿Cómo renuevo mis libros?", "Entre en **Mi cuenta** y pulse Renovar.",
                           language="es", keywords="renovar, préstamo, fecha de vencimiento")
    w["alpha_parking"] = answer(consortium, "Where do I park at Alpha Library?", "The garage on Main Street.",
                                library=alpha, keywords="parking, garage, car")
    w["beta_parking"] = answer(consortium, "Where do I park at Beta Library?", "Behind the building.",
                               library=beta, keywords="parking, car")
    w["draft"] = answer(consortium, "How do I renew a laptop loan?", "Draft: laptops renew at the desk.",
                        keywords="renew, laptop", state=AnswerState.DRAFT, owner=w["librarian"])
    w["retired"] = answer(consortium, "How do I renew by fax?", "We no longer take renewals by fax.",
                          keywords="renew, fax", state=AnswerState.RETIRED)
    w["far"] = answer(other, "How do I renew my books elsewhere?", "Another consortium's answer.", keywords="renew")
    return w

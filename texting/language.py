"""Is a text Spanish? A text in Spanish is a Spanish chat (docs/sms.md; routing by language, ROUTING.md).

No model and no package: texts are short, and the question is only Spanish or not. A text is Spanish
when it starts with a Spanish keyword (ESPAÑOL), or when its common words say so: Spanish function
words and letters (ñ, ¿, ¡, accented vowels) outnumber English function words. "Hola" alone is Spanish;
"hello" alone is not; a text with no tell-tale word is not (English stays the default)."""

from __future__ import annotations

import re
import unicodedata

SPANISH_KEYWORDS = frozenset({"espanol", "español", "spanish"})

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SPANISH = _words(
    "el la los las un una unos unas de del al que y o en por para con sin es son esta está están estoy "
    "hay como cómo qué quién cuándo dónde cuál puedo puede pueden tengo tiene necesito quiero mi mis tu "
    "su sus me se le lo nos hola gracias buenos buenas días tardes noches libro libros biblioteca ayuda "
    "préstamo tarjeta horario abierto abre cierra favor pero también muy más sí "
)
_ENGLISH = _words(
    "the a an of and or in on for with without is are was were be i you my your me we our can could do "
    "does how what who when where which have has need want this that it to from hello hi thanks thank "
    "please library book books card hours open help "
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def spanish_keyword(text: str) -> tuple[bool, str]:
    """(True, the rest) when the text starts with a Spanish keyword; else (False, the text)."""
    first, _, rest = text.strip().partition(" ")
    if _fold(first) in {_fold(k) for k in SPANISH_KEYWORDS}:
        return True, rest.strip()
    return False, text


def is_spanish(text: str) -> bool:
    words = [w.lower() for w in _WORD.findall(text)]
    spanish = sum(1 for w in words if w in _SPANISH)
    english = sum(1 for w in words if w in _ENGLISH)
    marks = sum(1 for ch in text if ch in "ñÑ¿¡áéíóúÁÉÍÓÚ")
    return spanish + marks > english and spanish + marks > 0


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")

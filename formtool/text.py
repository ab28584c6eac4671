"""Text helpers shared by every layer."""

from __future__ import annotations

import unicodedata

# German spells umlauts out; other accents just lose their mark (NFKD below).
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe",
                          "Ü": "Ue"})


def to_ascii(text: str) -> str:
    """ASCII as a German reader would spell it ("Gößnitz" -> "Goessnitz", "Čermák" ->
    "Cermak"); a letter with no ASCII form at all (Ł) is dropped."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_UMLAUTS))
    return decomposed.encode("ascii", "ignore").decode("ascii")

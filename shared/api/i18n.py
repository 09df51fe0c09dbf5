"""Languages of the human-facing pages (portal, ribbon): English, Swedish, Dutch, French."""

from __future__ import annotations

LANGUAGES = ("en", "sv", "nl", "fr")


def negotiate(accept_language: str | None) -> str:
    """Pick the best supported language from an Accept-Language header (q-values honored)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else "en"

"""Post categories (DESIGN.md "Categories"): six hashtags, with their French, Dutch, German and
English synonyms, so that `#zoekertje`, `#Kleinanzeige` and `#annonce` all land in the same feed.

Hashtags are compared lower-case and accent-folded (`#Événement` == `#evenement`); for synonyms the
underscores are ignored too (`#te_koop` == `#tekoop`). `canonical(tag)` gives the category a tag
belongs to, or the folded tag itself when it is no category: that is what `PostTag.canonical` stores
and what the tag timeline matches on.
"""

from __future__ import annotations

import unicodedata

CATEGORIES: dict[str, tuple[str, ...]] = {
    "annonce": ("annonce", "annonces", "petiteannonce", "petitesannonces", "avendre", "adonner",
                "zoekertje", "zoekertjes", "tekoop", "tegeef", "weggeven", "anzeige", "anzeigen",
                "kleinanzeige", "kleinanzeigen", "zuverkaufen", "zuverschenken", "verschenken",
                "forsale", "fortrade", "giveaway", "classified", "classifieds"),
    "aide": ("aide", "entraide", "coupdemain", "hulp", "burenhulp", "hulpgezocht", "hilfe",
             "nachbarschaftshilfe", "help", "helpwanted", "mutualaid"),
    "evenement": ("evenement", "evenements", "evenementen", "activiteit", "activiteiten", "veranstaltung",
                  "veranstaltungen", "event", "events"),
    "perdu": ("perdu", "perdus", "perdue", "trouve", "trouvee", "perduettrouve", "objettrouve", "verloren",
              "gevonden", "verlorenengevonden", "gefunden", "verlorenundgefunden", "fundsache", "lost",
              "found", "lostandfound"),
    "recommandation": ("recommandation", "recommandations", "conseil", "bonplan", "aanbeveling", "aanrader",
                       "tip", "tips", "empfehlung", "empfehlungen", "recommendation", "recommendations"),
    "info": ("info", "infos", "information", "informations", "informatie", "mededeling", "mededelingen",
             "commune", "gemeente", "gemeinde", "mitteilung"),
}

_SYNONYMS: dict[str, str] = {synonym: name for name, synonyms in CATEGORIES.items() for synonym in synonyms}


def fold(tag: str) -> str:
    """Lower-case, accents removed (`Événement` -> `evenement`, `Straße` -> `strasse`)."""
    decomposed = unicodedata.normalize("NFKD", tag.lstrip("#").casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def category_of(tag: str) -> str | None:
    """The category a hashtag names, or None."""
    return _SYNONYMS.get(fold(tag).replace("_", ""))


def canonical(tag: str) -> str:
    """The category name for a synonym, otherwise the folded tag: what tag feeds compare."""
    return category_of(tag) or fold(tag)


def synonyms(category: str) -> tuple[str, ...]:
    """Every spelling that counts as `category` (empty for an unknown category)."""
    return CATEGORIES.get(category, ())

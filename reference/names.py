"""Name keys for partner resolution: reseller names and postal codes as comparable Polars expressions.

Only normalization lives here (pure expressions, no joins, no scoring): `clean_name` is how a
reported name is compared exactly, `name_key` is the normalized key (case and accents folded,
punctuation and legal-form suffixes removed), `compact_postal` is a postal code without case or
spaces. `partners.py` decides what to do with them.
"""

from __future__ import annotations

import polars as pl

LEGAL_FORMS: tuple[str, ...] = (
    "ltd", "limited", "plc", "llp", "lp", "llc", "inc", "incorporated", "corp", "corporation", "co",
    "company", "gmbh", "ggmbh", "mbh", "ag", "kg", "kgaa", "ohg", "ug", "ev", "sa", "sas", "sarl", "sl",
    "srl", "spa", "bv", "nv", "ab", "aktiebolag", "as", "asa", "aps", "oy", "oyj", "se", "pty", "pte",
    "bhd", "sdn", "kk",
)  # fmt: skip
"""Legal-form words as they read once folded and stripped of punctuation ("L.L.C." -> llc, "A/S" ->
as, "Pty. Ltd." -> pty ltd). Only trailing ones are removed, repeatedly ("GmbH & Co. KG"), and
never the first word, so a name is never emptied."""

CONNECTORS: tuple[str, ...] = ("and", "und", "u", "et", "og", "och", "the")
"""Words that carry no identity: "Schäfer & Söhne" = "Schäfer u. Söhne" = "Schafer and Sohne"."""

_SPECIAL_LETTERS = {
    "ø": "o",
    "æ": "ae",
    "ß": "ss",
    "œ": "oe",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "\u0131": "i",
}
"""Letters that Unicode does not decompose into a base letter plus an accent."""
_GERMAN = {"ä": "ae", "ö": "oe", "ü": "ue"}
"""The German transliteration ("Müller" written "Mueller"): a second key of every partner name."""

_SUFFIX_PATTERN = r"(?:\s+(?:" + "|".join(LEGAL_FORMS) + r"))+$"
_CONNECTOR_PATTERN = r"\b(?:" + "|".join(CONNECTORS) + r")\b"


def clean_name(expr: pl.Expr) -> pl.Expr:
    """A name as `sellout.reseller_name` holds it: trimmed, inner whitespace collapsed, '' -> null."""
    text = expr.cast(pl.String).str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def name_key(expr: pl.Expr, *, german: bool = False) -> pl.Expr:
    """The normalized key of a name: 'Schäfer & Söhne Datentechnik GmbH' -> 'schafer sohne datentechnik'.

    Lower case; accents folded (NFKD, marks dropped; ø, æ, ß... spelled out; with `german` the
    umlauts become ae/oe/ue first); initialisms closed up ('L.L.C.' -> 'llc', 'I.T.' -> 'it',
    'A/S' -> 'as'); every other punctuation mark a space; connector words dropped; trailing
    legal-form words removed; whitespace collapsed. Null when nothing is left.
    """
    text = expr.cast(pl.String).str.to_lowercase()
    if german:
        text = text.str.replace_many(list(_GERMAN), list(_GERMAN.values()))
    text = text.str.replace_many(list(_SPECIAL_LETTERS), list(_SPECIAL_LETTERS.values()))
    text = text.str.normalize("NFKD").str.replace_all(r"\p{Mn}", "")
    text = text.str.replace_all(r"\b([a-z])\.", "$1")  # a dot after a lone letter closes an initialism
    text = text.str.replace_all(r"\b([a-z])/([a-z])\b", "$1$2")
    text = text.str.replace_all("&", " and ", literal=True)
    text = text.str.replace_all(r"[^\p{L}\p{N}]+", " ")
    text = text.str.replace_all(_CONNECTOR_PATTERN, " ")
    text = text.str.replace_all(r"\s+", " ").str.strip_chars()
    text = text.str.replace_all(_SUFFIX_PATTERN, "")
    return pl.when(text == "").then(None).otherwise(text)


def compact_postal(expr: pl.Expr) -> pl.Expr:
    """A postal code for comparison: upper case without spaces or hyphens ('m5v 2t6' -> 'M5V2T6')."""
    text = expr.cast(pl.String).str.to_uppercase().str.replace_all(r"[\s\-]", "")
    return pl.when(text == "").then(None).otherwise(text)


def clean_country(expr: pl.Expr) -> pl.Expr:
    """An ISO country code as compared: trimmed, upper case, '' -> null."""
    text = expr.cast(pl.String).str.strip_chars().str.to_uppercase()
    return pl.when(text == "").then(None).otherwise(text)

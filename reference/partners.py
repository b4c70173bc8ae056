"""Partner resolution: every reported reseller (distributor, name, postal code, country) to a partner_id.

Pure and in memory: Polars frames in, one frame out, no storage. The steps, first that decides wins:

1. **alias**: the approved or corrected matches of `partner_aliases.csv` (a person's decision),
   by distributor, name (trimmed, whitespace collapsed), country and postal code; an alias
   without a postal code covers every postal code of that name.
2. **exact**: the reported name equals a partner's legal name (or a site's name) in the same country.
3. **normalized**: the normalized keys are equal (`names.name_key`: case, accents, punctuation,
   connector words and trailing legal forms removed; a partner name also has its German
   transliteration, "Müller" = "Mueller") in the same country, and the postal codes agree
   wherever both sides have one.
4. **fuzzy**: rapidfuzz `token_sort_ratio` of the normalized keys against every partner name of
   the same country (`process.cdist` over the distinct reported names of a country block).
   A reported key that is a *prefix* of a partner key (at least 10 characters and past the
   partner's first word: "SUMMIT DATA SOL", "Brightline Tech.") scores `TRUNCATION_SCORE`: the
   name was cut by a fixed-width field or lost its trailing words.

A step accepts only a single partner: two partners with the same name or key in one country (and
no postal code to tell them apart) are ambiguous and fall through, and end as `none`.

Fuzzy thresholds (the score is 0..100; 100 - score is roughly the share of characters that differ):

* `FUZZY_THRESHOLD` = 92 when the name is the only evidence (no postal code on one side, or the
  postal codes differ): one typo or one dropped letter in a 12-character name, not more. A
  different generic word ("Global Reach Services" vs "Global Reach Solutions": 86) stays out.
* `FUZZY_POSTAL_THRESHOLD` = 85 when the postal codes agree: the same postal code in the same
  country is independent evidence, so an abbreviated word ("Kingsbridge Netwks": 95, "Global
  Reach Soln.": 87, "Sthn Cross IT": 87) or a cut name (`TRUNCATION_SCORE` = 90) is accepted.
* `FUZZY_MARGIN` = 10: the best partner must beat the best *other* partner of the block by at
  least 10 points. Two partners within 10 points have names alike enough that choosing is a coin
  toss ("Nordic Data Services" vs "Nordic Data Solutions"): not guessed, partner_id stays null and
  both candidates are listed for a person to decide.

The thresholds favour precision: a wrong partner_id silently moves revenue, tier credit and
rebates to another company, while a null one lands in the exceptions view, ranked by the revenue
it holds back, and is fixed once with an alias. Every step blocks by country, so an automatic
match is always a partner (or partner site) in the reported country; a reseller without a
country is resolved by an alias only.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from reference.names import clean_country, clean_name, compact_postal, name_key

FUZZY_THRESHOLD = 92.0
FUZZY_POSTAL_THRESHOLD = 85.0
FUZZY_MARGIN = 10.0
TRUNCATION_SCORE = 90.0
TRUNCATION_MIN_CHARS = 10

REPORTED_KEYS = ("distributor_id", "reseller_name", "reseller_postal_code", "reseller_country")
"""The columns that identify a reported reseller (the `reported` frame's and the result's keys)."""
CANDIDATE_COLUMNS = ("partner_id", "legal_name", "country", "postal_code")
"""What resolution needs of each partner name: `ReferenceData.partner_names` provides it."""
ALIAS_COLUMNS = ("distributor_id", "reported_name", "postal_code", "country", "partner_id")

METHODS = ("alias", "exact", "normalized", "fuzzy", "none")

CANDIDATE = pl.Struct({"partner_id": pl.String(), "name": pl.String(), "score": pl.Float64()})
RESULT_SCHEMA: dict[str, pl.DataType] = {
    "distributor_id": pl.String(),
    "reseller_name": pl.String(),
    "reseller_postal_code": pl.String(),
    "reseller_country": pl.String(),
    "partner_id": pl.String(),
    "method": pl.String(),
    "score": pl.Float64(),
    "matched_name": pl.String(),
    "candidates": pl.List(CANDIDATE),
}
"""One row per distinct reported reseller. `score` is 100 for alias, exact and normalized matches,
the fuzzy score for fuzzy ones and the best candidate's score for `none` (null without any
candidate in the country); `matched_name` is the partner or site name that matched (the partner's
legal name for an alias); `candidates` holds the two best-scoring partners of the country block
(best first) for every reseller that reached the fuzzy step, empty for the others."""

_CHUNK_CELLS = 8_000_000
"""Score-matrix cells per cdist call: bounds memory (float32) whatever the block size."""


def resolve_partners(
    reported: pl.DataFrame,
    partners: pl.DataFrame,
    aliases: pl.DataFrame | None = None,
    *,
    threshold: float = FUZZY_THRESHOLD,
    postal_threshold: float = FUZZY_POSTAL_THRESHOLD,
    margin: float = FUZZY_MARGIN,
) -> pl.DataFrame:
    """Resolve each distinct reported reseller to a partner_id (see the module docstring).

    `reported` has the `REPORTED_KEYS` columns (more are ignored; repeated keys are resolved once);
    `partners` has `CANDIDATE_COLUMNS`, one row per name a partner is known by (several rows per
    partner are expected: history names and sites); `aliases` has `ALIAS_COLUMNS`. Returns
    `RESULT_SCHEMA`, one row per distinct reported key, in order of first appearance, with the
    reported values untouched so the result joins back on them (nulls included).
    """
    _require(reported, REPORTED_KEYS, "reported")
    _require(partners, CANDIDATE_COLUMNS, "partners")
    keys = (
        reported.select([pl.col(name).cast(pl.String) for name in REPORTED_KEYS])
        .unique(maintain_order=True)
        .with_row_index("_id")
        .with_columns(
            clean_name(pl.col("reseller_name")).alias("_name"),
            clean_country(pl.col("reseller_country")).alias("_country"),
            compact_postal(pl.col("reseller_postal_code")).alias("_postal"),
        )
        .with_columns(name_key(pl.col("_name")).alias("_key"))
    )
    candidates = _candidates(partners)
    decided: list[pl.DataFrame] = []
    if aliases is not None and aliases.height:
        _require(aliases, ALIAS_COLUMNS, "aliases")
        decided.append(_by_alias(keys, aliases, partners))
    decided.append(_by_exact(_open(keys, decided), candidates))
    decided.append(_by_key(_open(keys, decided), candidates))
    fuzzy = _by_fuzzy(_open(keys, decided), candidates, threshold, postal_threshold, margin)
    found = pl.concat([frame for frame in decided if frame.height] or [_DECIDED_EMPTY], how="vertical")
    result = (
        keys.join(found, on="_id", how="left")
        .join(fuzzy, on="_id", how="left")
        .with_columns(
            pl.coalesce("partner_id", "_fuzzy_partner").alias("partner_id"),
            pl.coalesce("method", "_fuzzy_method", pl.lit("none")).alias("method"),
            pl.coalesce("score", "_fuzzy_score").alias("score"),
            pl.coalesce("matched_name", "_fuzzy_name").alias("matched_name"),
            pl.col("candidates").fill_null(pl.lit([], dtype=pl.List(CANDIDATE))),
        )
        .sort("_id")
    )
    return result.select([pl.col(name).cast(dtype) for name, dtype in RESULT_SCHEMA.items()])


_DECIDED_EMPTY = pl.DataFrame(
    schema={
        "_id": pl.UInt32(),
        "partner_id": pl.String(),
        "method": pl.String(),
        "score": pl.Float64(),
        "matched_name": pl.String(),
    }
)


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {', '.join(missing)} (expected {', '.join(columns)})")


def _open(keys: pl.DataFrame, decided: list[pl.DataFrame]) -> pl.DataFrame:
    """The reported keys no step has decided yet."""
    done = [frame.select("_id") for frame in decided if frame.height]
    return keys.join(pl.concat(done), on="_id", how="anti") if done else keys


def _candidates(partners: pl.DataFrame) -> pl.DataFrame:
    """One row per (partner, name, country, postal code, key): both keys of every partner name."""
    names = (
        partners.select(
            pl.col("partner_id").cast(pl.String),
            clean_name(pl.col("legal_name")).alias("name"),
            clean_country(pl.col("country")).alias("country"),
            compact_postal(pl.col("postal_code")).alias("postal"),
        )
        .drop_nulls(["partner_id", "name", "country"])
        .unique()
    )
    return (
        pl.concat(
            [
                names.with_columns(name_key(pl.col("name")).alias("key")),
                names.with_columns(name_key(pl.col("name"), german=True).alias("key")),
            ]
        )
        .drop_nulls("key")
        .unique()
        .sort("country", "partner_id", "key", "name", "postal", nulls_last=True)
    )


def _by_alias(keys: pl.DataFrame, aliases: pl.DataFrame, partners: pl.DataFrame) -> pl.DataFrame:
    table = aliases.select(
        pl.col("distributor_id").cast(pl.String),
        clean_name(pl.col("reported_name")).alias("_name"),
        clean_country(pl.col("country")).alias("_country"),
        compact_postal(pl.col("postal_code")).alias("_postal"),
        pl.col("partner_id").cast(pl.String),
    ).drop_nulls(["distributor_id", "_name", "partner_id"])
    conflicts = table.group_by("distributor_id", "_name", "_country", "_postal").agg(
        pl.col("partner_id").n_unique().alias("n")
    )
    if conflicts.filter(pl.col("n") > 1).height:
        raise ValueError("aliases name two partners for the same reported reseller")
    table = table.unique(["distributor_id", "_name", "_country", "_postal"])
    names = partners.group_by("partner_id").agg(pl.col("legal_name").last().alias("matched_name"))
    on = ["distributor_id", "_name", "_country"]
    specific = keys.join(table, on=[*on, "_postal"], how="inner", nulls_equal=True)
    wildcard = keys.join(specific.select("_id"), on="_id", how="anti").join(
        table.filter(pl.col("_postal").is_null()).drop("_postal"), on=on, how="inner", nulls_equal=True
    )
    return (
        pl.concat([specific.select("_id", "partner_id"), wildcard.select("_id", "partner_id")])
        .join(names, on="partner_id", how="left")
        .select(
            "_id", "partner_id", pl.lit("alias").alias("method"), pl.lit(100.0).alias("score"), "matched_name"
        )
    )


def _single_partner(matches: pl.DataFrame, method: str) -> pl.DataFrame:
    """Keep the reported keys whose matches name exactly one partner, or exactly one whose postal
    code agrees (the postal code tells two same-named partners apart)."""
    per_key = matches.group_by("_id").agg(
        pl.col("partner_id").n_unique().alias("_n"),
        pl.col("partner_id").filter(pl.col("_postal_equal")).n_unique().alias("_n_postal"),
        pl.col("partner_id").first().alias("_only"),
        pl.col("name").first().alias("_only_name"),
        pl.col("partner_id").filter(pl.col("_postal_equal")).first().alias("_postal_partner"),
        pl.col("name").filter(pl.col("_postal_equal")).first().alias("_postal_name"),
    )
    return per_key.filter((pl.col("_n") == 1) | (pl.col("_n_postal") == 1)).select(
        "_id",
        pl.when(pl.col("_n") == 1).then("_only").otherwise("_postal_partner").alias("partner_id"),
        pl.lit(method).alias("method"),
        pl.lit(100.0).alias("score"),
        pl.when(pl.col("_n") == 1).then("_only_name").otherwise("_postal_name").alias("matched_name"),
    )


def _postal_equal() -> pl.Expr:
    return (pl.col("_postal") == pl.col("postal")).fill_null(False).alias("_postal_equal")


def _by_exact(keys: pl.DataFrame, candidates: pl.DataFrame) -> pl.DataFrame:
    names = candidates.select("partner_id", "name", "country", "postal").unique()
    matches = keys.join(names, left_on=["_country", "_name"], right_on=["country", "name"], how="inner")
    matches = matches.with_columns(pl.col("_name").alias("name"), _postal_equal())
    return _single_partner(matches, "exact")


def _by_key(keys: pl.DataFrame, candidates: pl.DataFrame) -> pl.DataFrame:
    matches = keys.join(candidates, left_on=["_country", "_key"], right_on=["country", "key"], how="inner")
    compatible = (
        pl.col("_postal").is_null() | pl.col("postal").is_null() | (pl.col("_postal") == pl.col("postal"))
    )
    return _single_partner(matches.filter(compatible).with_columns(_postal_equal()), "normalized")


_FUZZY_SCHEMA: dict[str, pl.DataType] = {
    "_id": pl.UInt32(),
    "_fuzzy_partner": pl.String(),
    "_fuzzy_method": pl.String(),
    "_fuzzy_score": pl.Float64(),
    "_fuzzy_name": pl.String(),
    "candidates": pl.List(CANDIDATE),
}


def _by_fuzzy(
    keys: pl.DataFrame, candidates: pl.DataFrame, threshold: float, postal_threshold: float, margin: float
) -> pl.DataFrame:
    """Score the open keys against their country block; accept a clear winner above the threshold."""
    keys = keys.drop_nulls(["_country", "_key"])
    blocks = candidates.partition_by("country", as_dict=True, maintain_order=True)
    out: list[pl.DataFrame] = []
    for (country,), block in keys.partition_by("_country", as_dict=True, maintain_order=True).items():
        if (country,) in blocks:
            out.append(_score_block(block, blocks[(country,)], threshold, postal_threshold, margin))
    if not out:
        return pl.DataFrame(schema=_FUZZY_SCHEMA)
    return pl.concat(out, how="vertical")


def _sorted_tokens(expr: pl.Expr) -> pl.Expr:
    """A key with its words in alphabetical order: `fuzz.ratio` of these is `token_sort_ratio`,
    with the sorting done once per name instead of once per pair."""
    return expr.str.split(" ").list.sort().list.join(" ")


def _score_block(
    reported: pl.DataFrame, block: pl.DataFrame, threshold: float, postal_threshold: float, margin: float
) -> pl.DataFrame:
    # Columns of the score matrix: one per distinct (partner, key), grouped by partner.
    columns = (
        block.group_by("partner_id", "key")
        .agg(pl.col("name").sort().first())
        .sort("partner_id", "key")
        .with_columns(_sorted_tokens(pl.col("key")).alias("sorted"))
    )
    cand_keys = columns["key"].to_list()
    cand_names = columns["name"].to_list()
    cand_sorted = columns["sorted"].to_list()
    cand_partner_ids = columns["partner_id"].to_list()
    partner_of = columns.select(pl.col("partner_id").rank("dense").cast(pl.Int64) - 1)[
        "partner_id"
    ].to_numpy()
    partner_columns = _partner_columns(partner_of)
    prefix_index = _PrefixIndex(cand_keys)

    distinct = (
        reported.select("_key")
        .unique(maintain_order=True)
        .with_columns(_sorted_tokens(pl.col("_key")).alias("_sorted"))
    )
    rep_keys = distinct["_key"].to_list()
    rep_sorted = distinct["_sorted"].to_list()
    step = max(1, _CHUNK_CELLS // len(cand_keys))
    best_score, best_col, second_score, second_col = [], [], [], []
    for start in range(0, len(rep_keys), step):
        scores = process.cdist(
            rep_sorted[start : start + step], cand_sorted, scorer=fuzz.ratio, dtype=np.float32, workers=-1
        )
        prefix_index.raise_truncated(scores, rep_keys[start : start + step])
        rows = np.arange(scores.shape[0])
        best = scores.argmax(axis=1)
        best_score.append(scores[rows, best])
        best_col.append(best)
        # Blank out every column of the best partner: what is left is the best *other* partner.
        scores[rows[:, None], partner_columns[partner_of[best]]] = -1.0
        second = scores.argmax(axis=1)
        second_score.append(scores[rows, second])
        second_col.append(second)
    best_at, second_at = np.concatenate(best_col), np.concatenate(second_col)
    best_values = np.concatenate(best_score).astype(np.float64).round(1)
    second_values = np.concatenate(second_score).astype(np.float64).round(1)
    has_second = second_values >= 0
    scored = pl.DataFrame(
        {
            "_key": rep_keys,
            "_best_partner": [cand_partner_ids[c] for c in best_at],
            "_best_name": [cand_names[c] for c in best_at],
            "_best": best_values,
            "_second_partner": [
                cand_partner_ids[c] if ok else None for c, ok in zip(second_at, has_second, strict=True)
            ],
            "_second_name": [
                cand_names[c] if ok else None for c, ok in zip(second_at, has_second, strict=True)
            ],
            "_second": np.where(has_second, second_values, np.nan),
        },
        schema_overrides={
            "_best_partner": pl.String(),
            "_second_partner": pl.String(),
            "_second_name": pl.String(),
        },
        nan_to_null=True,
    )
    sites = (
        block.select(
            pl.col("partner_id").alias("_best_partner"),
            pl.col("postal").alias("_postal"),
            pl.lit(True).alias("_site"),
        )
        .drop_nulls("_postal")
        .unique()
    )
    joined = (
        reported.select("_id", "_key", "_postal")
        .join(scored, on="_key", how="left")
        .join(sites, on=["_best_partner", "_postal"], how="left")
    )
    postal_agrees = pl.col("_site").fill_null(False)
    needed = pl.when(postal_agrees).then(pl.lit(postal_threshold)).otherwise(pl.lit(threshold))
    clear = pl.col("_second").is_null() | (pl.col("_best") - pl.col("_second") >= margin)
    accepted = (pl.col("_best") >= needed) & clear
    candidate = [
        pl.when(pl.col(f"_{rank}_partner").is_not_null()).then(
            pl.struct(
                pl.col(f"_{rank}_partner").alias("partner_id"),
                pl.col(f"_{rank}_name").alias("name"),
                pl.col(f"_{rank}").alias("score"),
            )
        )
        for rank in ("best", "second")
    ]
    return joined.select(
        "_id",
        pl.when(accepted).then("_best_partner").alias("_fuzzy_partner"),
        pl.when(accepted).then(pl.lit("fuzzy")).otherwise(pl.lit("none")).alias("_fuzzy_method"),
        pl.col("_best").alias("_fuzzy_score"),
        pl.when(accepted).then("_best_name").alias("_fuzzy_name"),
        pl.concat_list(candidate).list.drop_nulls().alias("candidates"),
    )


def _partner_columns(partner_of: np.ndarray) -> np.ndarray:
    """partner index -> its column indices, padded with its first column (a repeat is harmless)."""
    starts = np.flatnonzero(np.r_[True, partner_of[1:] != partner_of[:-1]])
    counts = np.diff(np.r_[starts, len(partner_of)])
    offsets = np.minimum(np.arange(counts.max())[None, :], counts[:, None] - 1)
    return starts[:, None] + offsets


class _PrefixIndex:
    """Finds the partner keys that a reported key is a cut-off prefix of, by binary search."""

    def __init__(self, keys: list[str]) -> None:
        self.order = np.argsort(np.array(keys, dtype=object), kind="stable")
        self.sorted = np.array([keys[i] for i in self.order], dtype=object)
        self.lengths = np.array([len(key) for key in keys])
        self.first_word = np.array([len(key.split(" ", 1)[0]) for key in keys])

    def raise_truncated(self, scores: np.ndarray, rep_keys: list[str]) -> None:
        """Raise to `TRUNCATION_SCORE` the cells where the reported key is a truncation of the
        partner key: a strict prefix, at least `TRUNCATION_MIN_CHARS` long and past its first word."""
        probe = np.array(rep_keys, dtype=object)
        long_enough = np.array([len(key) >= TRUNCATION_MIN_CHARS for key in rep_keys])
        if not long_enough.any():
            return
        low = np.searchsorted(self.sorted, probe, side="left")
        high = np.searchsorted(self.sorted, np.array([key + "\U0010ffff" for key in rep_keys], dtype=object))
        for row in np.flatnonzero(long_enough & (high > low)):
            length = len(rep_keys[row])
            for column in self.order[low[row] : high[row]]:
                if length < self.lengths[column] and length > self.first_word[column] + 1:
                    scores[row, column] = max(scores[row, column], TRUNCATION_SCORE)

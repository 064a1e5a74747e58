"""Validation rules of watch events, defined once as data and rendered two ways.

:func:`event_rules` lists the rules in order of precedence. Each :class:`Rule` names the
reason a bad row gets and a declarative :data:`Check` on a column of the *checked* frame
(see :func:`vidflow.analytics.silver.check_events`). From that one list:

* :func:`bad_condition` / :func:`reason_column` render Spark conditions: every bad row gets
  the reason of the first rule it breaks, and lands in quarantine with it;
* :func:`expectation_suite` renders a Great Expectations 1.x suite, each expectation with
  ``mostly = 1 - max_bad_ratio``, plus one over the whole batch (``quarantine_reason`` is
  null for at least that share of rows). :func:`validate_batch` runs it on the batch's
  Spark DataFrame (GX's Spark execution engine, without the ``[spark]`` extra) and builds
  Data Docs; the gate passes only when every expectation does.

GX, like SQL, ignores nulls in column-value expectations: a rule's share is of the rows
where its column is set (rows missing the column are caught, and counted, by
``missing_field``). So the gate reads: the batch as a whole, and each rule on the rows it
applies to, may reject at most ``max_bad_ratio``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from vidflow.events import EVENT_TYPES, MAX_POSITION_SECONDS, SCHEMA_VERSION
from vidflow.regions import DEVICES, REGION_NAMES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from vidflow.analytics.payloads import GateOutcome

#: Lower-case canonical UUID text, as ``str(uuid.UUID(...))`` writes it.
UUID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: Column of the checked frame that holds a bad row's reason (null: accepted).
REASON_COLUMN: Final = "quarantine_reason"
#: Fields every stored line must carry (``user_id`` may be null: anonymous viewers).
REQUIRED_FIELDS: Final = (
    "schema",
    "event_id",
    "event_type",
    "video_id",
    "session_id",
    "event_ts",
    "received_at",
    "position_seconds",
    "region",
    "device",
)


# --- checks: what a rule tests, as data ---------------------------------------------------
@dataclass(frozen=True)
class IsTrue:
    """A boolean helper column of the checked frame is true (null: does not apply)."""

    column: str


@dataclass(frozen=True)
class NotNull:
    columns: tuple[str, ...]


@dataclass(frozen=True)
class InSet:
    column: str
    values: tuple[str | int, ...]


@dataclass(frozen=True)
class Between:
    column: str
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Matches:
    columns: tuple[str, ...]
    pattern: str


Check = IsTrue | NotNull | InSet | Between | Matches


@dataclass(frozen=True)
class Rule:
    """A reason a row is quarantined, and the check a good row passes."""

    reason: str
    description: str
    check: Check


def event_rules(*, max_clock_skew_seconds: float, max_lateness_hours: float) -> tuple[Rule, ...]:
    """Every rule, in order of precedence (a bad row gets the first reason it earns)."""
    return (
        Rule("not_json", "the line is not a JSON object", IsTrue("is_json_object")),
        Rule(
            "wrong_type",
            "a field has the wrong JSON type or an unparseable timestamp",
            IsTrue("types_ok"),
        ),
        Rule("missing_field", "a required field is missing or null", NotNull(REQUIRED_FIELDS)),
        Rule(
            "unsupported_schema",
            f"schema is not {SCHEMA_VERSION}",
            InSet("schema", (SCHEMA_VERSION,)),
        ),
        Rule(
            "malformed_uuid",
            "event_id, video_id, session_id or user_id is not a canonical UUID",
            Matches(("event_id", "video_id", "session_id", "user_id"), UUID_PATTERN),
        ),
        Rule(
            "unknown_event_type",
            f"event_type is not one of {', '.join(EVENT_TYPES)}",
            InSet("event_type", EVENT_TYPES),
        ),
        Rule(
            "unknown_region",
            f"region is not one of {', '.join(REGION_NAMES)}",
            InSet("region", REGION_NAMES),
        ),
        Rule(
            "unknown_device",
            f"device is not one of {', '.join(DEVICES)}",
            InSet("device", DEVICES),
        ),
        Rule(
            "position_out_of_range",
            f"position_seconds is outside [0, {MAX_POSITION_SECONDS:g}]",
            Between("position_seconds", 0.0, MAX_POSITION_SECONDS),
        ),
        Rule(
            "future_event",
            f"event time is more than {max_clock_skew_seconds:g} s after its receive time",
            Between("skew_seconds", None, float(max_clock_skew_seconds)),
        ),
        Rule(
            "too_late",
            f"event time is more than {max_lateness_hours:g} h before its receive time",
            Between("lateness_hours", None, float(max_lateness_hours)),
        ),
        Rule("unknown_video", "video_id is not a video in the catalog", IsTrue("video_known")),
    )


# --- rendering 1: Spark conditions ---------------------------------------------------------
def bad_condition(check: Check) -> Column:
    """True for a row that fails ``check``; never null. Nulls pass every check but
    ``NotNull`` (as in GX), so a missing value earns ``missing_field``, not a second reason."""
    from pyspark.sql import functions as F

    def any_of(conditions: list[Column]) -> Column:
        return reduce(lambda a, b: a | b, conditions)

    match check:
        case IsTrue(column):
            failed = ~F.col(column)
        case NotNull(columns):
            failed = any_of([F.col(c).isNull() for c in columns])
        case InSet(column, values):
            failed = ~F.col(column).isin(*values)
        case Between(column, low, high):
            outside = []
            if low is not None:
                outside.append(F.col(column) < F.lit(low))
            if high is not None:
                outside.append(F.col(column) > F.lit(high))
            failed = any_of(outside)
        case Matches(columns, pattern):
            failed = any_of([~F.col(c).rlike(pattern) for c in columns])
    return F.coalesce(failed, F.lit(False))


def reason_column(rules: tuple[Rule, ...]) -> Column:
    """The reason of the first rule a row breaks, or null when it breaks none."""
    from pyspark.sql import functions as F

    return F.coalesce(
        *[F.when(bad_condition(rule.check), F.lit(rule.reason)) for rule in rules]
    ).alias(REASON_COLUMN)


# --- rendering 2: a Great Expectations suite -----------------------------------------------
def expectation_configs(rules: tuple[Rule, ...], mostly: float) -> list[tuple[str, dict[str, Any]]]:
    """``(expectation class name, keyword arguments)`` for every rule, and the batch-wide
    one: plain data, so tests can read the suite without importing GX."""

    def kw(rule: Rule, **kwargs: Any) -> dict[str, Any]:
        return {**kwargs, "mostly": mostly, "meta": {"rule": rule.reason}}

    configs: list[tuple[str, dict[str, Any]]] = []
    for rule in rules:
        match rule.check:
            case IsTrue(column):
                configs.append(
                    ("ExpectColumnValuesToBeInSet", kw(rule, column=column, value_set=[True]))
                )
            case NotNull(columns):
                configs += [("ExpectColumnValuesToNotBeNull", kw(rule, column=c)) for c in columns]
            case InSet(column, values):
                configs.append(
                    ("ExpectColumnValuesToBeInSet", kw(rule, column=column, value_set=list(values)))
                )
            case Between(column, low, high):
                configs.append(
                    (
                        "ExpectColumnValuesToBeBetween",
                        kw(rule, column=column, min_value=low, max_value=high),
                    )
                )
            case Matches(columns, pattern):
                configs += [
                    ("ExpectColumnValuesToMatchRegex", kw(rule, column=c, regex=pattern))
                    for c in columns
                ]
    configs.append(
        (
            "ExpectColumnValuesToBeNull",
            {"column": REASON_COLUMN, "mostly": mostly, "meta": {"rule": "batch"}},
        )
    )
    return configs


def expectation_suite(rules: tuple[Rule, ...], mostly: float, name: str = "watch_events") -> Any:
    """The rules as a ``great_expectations.ExpectationSuite``."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=name)
    for class_name, kwargs in expectation_configs(rules, mostly):
        suite.add_expectation(getattr(gxe, class_name)(**kwargs))
    return suite


def _failure_line(rule: str, results: list[Any]) -> str:
    """One rule's failed expectations in a line: columns, worst count, examples."""
    columns = ", ".join(str(r.expectation_config.kwargs.get("column")) for r in results)
    worst = max(results, key=lambda r: (r.result or {}).get("unexpected_count") or 0)
    details = worst.result or {}
    text = (
        f"{rule} [{columns}]: {details.get('unexpected_count', '?')} of "
        f"{details.get('element_count', '?')} rows"
    )
    examples = [repr(v)[:60] for v in (details.get("partial_unexpected_list") or [])[:3]]
    return text + (f", e.g. {', '.join(examples)}" if examples else "")


def describe_failures(results: list[Any]) -> tuple[str, ...]:
    """Failed GX expectation results grouped by rule, the batch-wide one first."""
    by_rule: dict[str, list[Any]] = {}
    for result in results:
        if not result.success:
            rule = (result.expectation_config.meta or {}).get("rule", "?")
            by_rule.setdefault(rule, []).append(result)
    order = sorted(by_rule, key=lambda rule: rule != "batch")
    return tuple(_failure_line(rule, by_rule[rule]) for rule in order)


def validate_batch(
    checked: DataFrame,
    rules: tuple[Rule, ...],
    *,
    max_bad_ratio: float,
    data_docs_dir: Path | None = None,
    run_name: str = "watch_events",
) -> GateOutcome:
    """Run the suite on the checked batch (with its ``quarantine_reason`` column) through
    a GX Checkpoint; build Data Docs into ``data_docs_dir`` when given."""
    import great_expectations as gx
    from great_expectations.checkpoint.actions import UpdateDataDocsAction, ValidationAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from pyspark.sql import functions as F

    from vidflow.analytics.payloads import GateOutcome

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    actions: list[ValidationAction] = []
    if data_docs_dir is not None:
        data_docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name="vidflow",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        actions.append(UpdateDataDocsAction(name="data_docs", site_names=["vidflow"]))
    batch_definition = (
        context.data_sources.add_spark(name="lake")
        .add_dataframe_asset(name="watch_events_batch")
        .add_batch_definition_whole_dataframe("batch")
    )
    suite = context.suites.add(expectation_suite(rules, 1.0 - max_bad_ratio))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="watch_events_gate", data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="watch_events_gate",
            validation_definitions=[definition],
            actions=actions,
            result_format="SUMMARY",
        )
    )
    result = checkpoint.run(
        batch_parameters={"dataframe": checked}, run_id=RunIdentifier(run_name=run_name)
    )
    failures = describe_failures(
        [r for validation in result.run_results.values() for r in validation.results]
    )
    counts = checked.agg(
        F.count(F.lit(1)).alias("rows"), F.count(F.col(REASON_COLUMN)).alias("bad")
    ).first()
    assert counts is not None
    docs = None
    if data_docs_dir is not None:
        docs = str(data_docs_dir / "index.html")
    return GateOutcome(
        passed=bool(result.success),
        rows=int(counts["rows"]),
        bad_rows=int(counts["bad"]),
        max_bad_ratio=max_bad_ratio,
        failures=failures,
        data_docs=docs,
    )

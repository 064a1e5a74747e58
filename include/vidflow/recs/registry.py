"""The ``champion`` alias gate of the ``vidflow-recommender`` registered model.

``decide_alias`` is the pure decision; ``apply_decision`` sets the alias, tags the
version and the run with the reason, and appends to the audit trail: one registered-model
tag per champion change, ``champion_history.<UTC timestamp>`` =
``version=<v> previous=<v|none> ndcg@10=<x>``, so the registry itself answers "which
version was champion when".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MODEL_NAME = "vidflow-recommender"
CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "champion_history."


@dataclass(frozen=True)
class AliasDecision:
    alias: str  # CHAMPION or CHALLENGER
    reason: str

    @property
    def promoted(self) -> bool:
        return self.alias == CHAMPION


def decide_alias(
    candidate: float,
    champion: float | None,
    margin: float,
    metric: str = "ndcg@10",
    champion_unusable: str | None = None,
) -> AliasDecision:
    """Promote when there is no champion, or when the candidate's ``metric`` on the
    shared holdout exceeds the champion's by MORE than ``margin`` (absolute points).
    ``champion_unusable``: why the current champion could not be evaluated (its model
    cannot be loaded): serving cannot load it either, so the candidate replaces it."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    for name, value in (("candidate", candidate), ("champion", champion)):
        if value is not None and not (0.0 <= value <= 1.0):
            raise ValueError(f"{name} {metric} {value} is not in [0, 1]")
    if champion_unusable is not None:
        return AliasDecision(
            CHAMPION, f"{champion_unusable}; replaced by this version ({metric} {candidate:.4f})"
        )
    if champion is None:
        return AliasDecision(CHAMPION, f"no champion yet: {metric} {candidate:.4f}")
    gain = candidate - champion
    if gain > margin:
        return AliasDecision(
            CHAMPION,
            f"{metric} {candidate:.4f} beats the champion's {champion:.4f} by "
            f"{gain:+.4f} > margin {margin:.4f}",
        )
    return AliasDecision(
        CHALLENGER,
        f"{metric} {candidate:.4f} vs the champion's {champion:.4f} on the same holdout: "
        f"gain {gain:+.4f} is not above the margin {margin:.4f}",
    )


def current_champion(client: Any, name: str = MODEL_NAME) -> Any | None:
    """The champion's ModelVersion, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def apply_decision(
    client: Any,
    version: str,
    run_id: str,
    decision: AliasDecision,
    previous: str | None,
    ndcg: float,
    name: str = MODEL_NAME,
    now: datetime | None = None,
) -> None:
    client.set_registered_model_alias(name, decision.alias, version)
    client.set_model_version_tag(name, version, "gate_decision", decision.alias)
    client.set_model_version_tag(name, version, "gate_reason", decision.reason)
    client.set_tag(run_id, "gate_decision", decision.alias)
    client.set_tag(run_id, "gate_reason", decision.reason)
    if decision.promoted:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
        client.set_registered_model_tag(
            name,
            HISTORY_PREFIX + stamp,
            f"version={version} previous={previous or 'none'} ndcg@10={ndcg:.5f}",
        )


def champion_history(client: Any, name: str = MODEL_NAME) -> list[tuple[str, str]]:
    """(UTC timestamp, entry) of every champion change, oldest first."""
    tags = client.get_registered_model(name).tags
    return sorted(
        (k[len(HISTORY_PREFIX) :], v) for k, v in tags.items() if k.startswith(HISTORY_PREFIX)
    )

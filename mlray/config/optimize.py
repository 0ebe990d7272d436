"""Model of configs/optimize.yaml: the optimization job (``mlray optimize``, ``python -m jobs.optimize``)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from mlray.config.base import (
    ConfigModel,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    RunName,
)
from mlray.config.sections import (
    UNDER_STORAGE,
    ImprovementConfig,
    JobConfig,
    Location,
    SpotConfig,
    TimeoutsConfig,
)


def _registered_kind(kind: str) -> str:
    """``auto`` or a name of a registered problem kind (mlray.optimize.registry)."""
    if kind == "auto":
        return kind
    from mlray.optimize.registry import problem_kind_names

    names = problem_kind_names()
    if kind not in names:
        raise ValueError(f"expected one of {names} (the registered problem kinds), got {kind!r}")
    return kind


ProblemKindName = Annotated[
    str,
    AfterValidator(_registered_kind),
    Field(description="auto (read from the file), or a registered problem kind: cvrp, vrptw, jobshop, "
          "or one added with mlray.optimize.register_kind."),
]


class ProblemSection(ConfigModel):
    """The instance to solve when the job reads it from a file."""

    path: Location | None = Field(
        default=None,
        description="VRPLIB .vrp, Solomon .txt, or JSPLIB/Taillard job-shop file, or a shipped instance by "
        "name ('jsp/ft06', 'cvrp/E-n13-k4.vrp'; mlray.optimize.instances)." + UNDER_STORAGE,
    )
    kind: ProblemKindName = "auto"
    best_known: PositiveFloat | None = Field(
        default=None, description="For the gap column; null = read from beside the file (.sol, bks.json)."
    )


class ArmSection(ConfigModel):
    """One arm of the portfolio."""

    name: str | None = Field(default=None, description="Unique name; default '<kind>-<index>'.")
    kind: str = Field(
        description="cp_sat, routing, pyvrp, jobshop_tabu, or an import path 'pkg.module:ArmClass'."
    )
    seed: NonNegativeInt = 0
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="cp_sat: CP-SAT parameters by name (num_workers, search_branching, subsolvers...); "
        "routing: first_solution, metaheuristic, solution_limit; pyvrp: IteratedLocalSearchParams fields; "
        "jobshop_tabu: threads, tenure_min, tenure_span, stall, shake.",
    )
    improve_only: bool = Field(
        default=False, description="Only search from an incumbent found by another arm."
    )
    receive: bool = Field(
        default=True,
        description="When sharing, start rounds from other arms' better incumbents; false: only from its own "
        "(it still publishes). The default portfolio's first arm is such an anchor.",
    )


class SolverSection(ConfigModel):
    type: Literal["auto", "cp_sat", "routing"] = Field(
        default="auto", description="auto: cp_sat for job shop, routing for CVRP/VRPTW."
    )
    time_limit: PositiveFloat = Field(default=60, description="Search seconds (the actors' common deadline).")
    num_actors: PositiveInt = Field(
        default=2,
        description="Arms when 'arms' is null (default portfolio; job shop: CP-SAT arms and, from 2 on, "
        "the tabu arm last).",
    )
    cpus_per_actor: PositiveFloat = 1
    workers_per_arm: PositiveInt | None = Field(
        default=None, description="Threads per arm (CP-SAT num_workers); null = cpus_per_actor rounded up."
    )
    arms: list[ArmSection] | None = Field(
        default=None, description="Explicit arms; null = the default portfolio."
    )
    seed: NonNegativeInt = Field(
        default=0, description="Default portfolio: arm i gets seed + i (explicit arms carry their own)."
    )
    race_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of the search time all arms race on equal CPUs; then the CPUs go to the "
        "leading arm, up to what it can use (CP-SAT: all). 1 = keep the equal split.",
    )
    sharing: bool = Field(default=True, description="Arms start their rounds from the global incumbent.")
    max_restarts: NonNegativeInt = Field(
        default=1, description="Restarts of a dead arm actor before it is dropped."
    )
    store_max_restarts: NonNegativeInt = Field(
        default=3, description="Restarts of a dead incumbent store actor; it reloads its last checkpoint."
    )
    poll_interval: PositiveFloat = Field(
        default=0.2, description="Seconds between an arm's looks at the store."
    )
    lost_after: PositiveFloat = Field(
        default=30.0,
        description="Seconds an arm may go without looking at the store before it counts as lost (its node "
        "gone): its CPUs go to the other arms until it looks again. Longer than an arm's silent stretches "
        "on a busy machine (a cold numba compile, a large model build); a node that dies outright is "
        "noticed by Ray within seconds without it.",
    )
    handover_interval: NonNegativeFloat = Field(
        default=2.0,
        description="Seconds without own progress after which a round is cut to pick up a better outside incumbent.",
    )
    stop_grace: PositiveFloat = Field(
        default=10.0, description="Seconds an arm gets to stop before it is killed."
    )


class SearchImprovementConfig(ImprovementConfig):
    relative: bool = Field(
        default=True, description="threshold is a fraction of the incumbent's objective (0.01 = 1 %)."
    )


class SearchTimeoutsConfig(TimeoutsConfig):
    """The optimization's limits besides solver.time_limit (mlray.optimize.stopping.SearchStopping).
    An improvement is measured from the last incumbent that counted as one."""

    RENAMED: ClassVar[dict[str, str]] = {
        "improvement_threshold": "use improvement: {threshold: <value>} (a fraction of the incumbent, as "
        "before; relative: false makes it an amount of the objective)",
        "iteration": "use round (seconds one arm round may take)",
    }

    round: PositiveFloat | None = Field(
        default=300,
        description="Seconds one arm round may take; the round ends and the arm starts its next one (the "
        "solve goes on).",
    )
    improvement: SearchImprovementConfig = SearchImprovementConfig()


class CheckpointSection(ConfigModel):
    interval: NonNegativeFloat = Field(default=1.0, description="Minimum seconds between incumbent writes.")
    resume: bool = Field(
        default=True, description="Start from the incumbent checkpointed under the same run_name."
    )
    write_timeout: PositiveFloat = Field(
        default=10.0,
        description="Seconds a checkpoint write may go unanswered before it is reported (it goes on in the "
        "background; the solve never waits for storage). Also the final flush's wait.",
    )
    retry_interval: PositiveFloat = Field(
        default=5.0, description="Seconds before a failed checkpoint write is tried again (newest incumbent)."
    )


class OutputSection(ConfigModel):
    plots: bool = True
    dir: Location = Field(
        default="optimize",
        description="Folder for PNGs and the solution JSON, in a <run_name> subfolder." + UNDER_STORAGE,
    )


class OptimizeJobConfig(JobConfig):
    run_name: RunName = "mlray-optimize"
    problem: ProblemSection = ProblemSection()
    solver: SolverSection = SolverSection()
    timeouts: SearchTimeoutsConfig = SearchTimeoutsConfig()
    checkpoint: CheckpointSection = CheckpointSection()
    output: OutputSection = OutputSection()
    spot: SpotConfig = SpotConfig()

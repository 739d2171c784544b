"""Where a search keeps its studies, and how a study is named, set up and filled with its draws.

One Optuna study per cell (``<search>-<task>-<cell>``, or ``<search.study_name>-<cell>``). The launcher
(``prepare``) creates the studies and queues their draws as waiting trials, each tagged with its draw
number; workers only take waiting trials. ``search.n_trials`` is thus the number of draws, and a study
ends with exactly that many trials that ran to an outcome, however many workers take part and however
often they are killed: a killed worker's trial is failed by its stale heartbeat and queued again
(``search.retries`` times), and a draw whose retries ran out is queued again by the next launch.

``search.sampler``: ``random`` queues each draw with its values, the first ``n_trials`` draws of a seeded
``RandomSampler`` (the papers' design; the only one that can pair cells). An adaptive sampler (``tpe``,
``cmaes``, ``gp``) cannot know its draws up front, as they depend on the results so far: its draws are
queued without values, and the worker that takes one asks the sampler for them then (``propose``), under
the same claim, so the queue keeps the counts exact. A proposed trial stores its values at once: its
retry after a kill trains the same values and continues from its checkpoint.

Storage (``search.storage``): null = SQLite at ``<results_dir>/studies.db``; a path ending in ``.db``
(SQLite); a path ending in ``.log`` or ``.jsonl`` (Optuna's journal file, for a shared filesystem
without a database server; it has no heartbeats); any SQLAlchemy URL (``postgresql+psycopg://...``).
"""

from __future__ import annotations

import fcntl
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import optuna
from omegaconf import DictConfig

from rnnbench.config.choices import SAMPLERS
from rnnbench.errors import ConfigError
from rnnbench.outcome import Outcome, trial_outcome
from rnnbench.search.space import draws, parse_space, suggest
from rnnbench.tasks import task_class
from rnnbench.training.runtime import derived_seed

RUNNING, WAITING = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING


@contextmanager
def experimental_api():
    """Optuna marks its heartbeat and retry API experimental; it is what retries a killed worker's trial."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def fail_stale_trials(study: optuna.Study) -> None:
    """Trials of killed workers (stale heartbeats): failed, and queued again by the retry callback."""
    with experimental_api():
        optuna.storages.fail_stale_trials(study)


@contextmanager
def claim_lock(storage):
    """Serialises taking queued trials among the processes of one machine on a SQLite file: SQLite reads
    outside a write transaction, so two workers could both see a trial WAITING and both take it.
    (PostgreSQL locks the row; the journal orders the claims in its log.)"""
    url = str(getattr(getattr(storage, "engine", None), "url", ""))
    if not url.startswith("sqlite:///"):
        yield
        return
    fd = os.open(url[len("sqlite:///") :] + ".claims.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def storage_url(storage: str | None, results_dir: str) -> str:
    if storage is None:
        return f"sqlite:///{Path(results_dir).absolute() / 'studies.db'}"
    if "://" not in storage and storage.endswith(".db"):
        return f"sqlite:///{Path(storage).absolute()}"
    return storage


def open_storage(storage: str | None, results_dir: str, heartbeat_s: int = 60, retries: int = 1):
    """The Optuna storage of ``search.storage``; a bad URL or an unreachable server is one line."""
    url = storage_url(storage, results_dir)
    try:
        if "://" not in url:
            if not url.endswith((".log", ".jsonl")):
                raise ConfigError(
                    f"search.storage={storage!r} is not valid; give a SQLAlchemy URL "
                    "(sqlite:///..., postgresql+psycopg://...), a .db file or a .log journal"
                )
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(url))
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        with experimental_api():
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat_s,
                grace_period=2 * heartbeat_s,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=retries
                ),
            )
    except ConfigError:
        raise
    except Exception as error:  # a bad URL, a missing driver, a server that does not answer
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ConfigError(f"search.storage={url!r} cannot be opened ({reason})") from None


def study_name(cfg: DictConfig, cell: str) -> str:
    s = cfg.search
    return f"{s.study_name}-{cell}" if s.study_name else f"{s.name}-{cfg.task.name}-{cell}"


def direction(task) -> str:
    """``task``: the task class (``rnnbench.tasks.task_class``)."""
    return "maximize" if task.higher_is_better else "minimize"


def check_sampler(cfg: DictConfig) -> None:
    """``search.sampler`` with ``search.paired``: only random draws can be paired; one line otherwise."""
    name, paired = cfg.search.get("sampler", "random"), cfg.search.paired
    if name != "random" and paired:
        raise ConfigError(
            f"search.sampler={name} is not valid with search.paired=true (paired cells train "
            "the same draws, queued up front); choose search.sampler=random, or "
            f"search.paired=false for {name}"
        )
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise ConfigError("search.sampler=cmaes needs the cmaes package: pip install cmaes") from None


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """A fresh sampler of ``search.sampler`` (Optuna's defaults: TPE and GP sample their first 10 trials at
    random, CMA-ES its first; dimensions CMA-ES cannot handle, such as choices, are drawn at random)."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with experimental_api():
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed)  # multivariate: Optuna 5's default
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    raise ConfigError(f"search.sampler={name!r} is not valid; choose one of: {', '.join(SAMPLERS)}")


def sampler_seed(study_seed: int, number: int) -> int:
    """The seed of the sampler that proposes trial ``number``: the study's seed and the trial's number, so
    no two proposals share a seed, and a resumed study does not propose its first points again (a
    seeded sampler started anew repeats its sequence)."""
    return derived_seed(study_seed, 2_000_000 + number)


def propose(
    study: optuna.Study,
    storage,
    trial_id: int,
    distributions: dict,
    name: str,
    frozen: optuna.trial.FrozenTrial | None = None,
) -> None:
    """Fills in the values a taken trial does not hold yet (an adaptive sampler's queued draw) with the
    proposal of sampler ``name`` given the study's trials so far (running ones included: TPE's constant
    liar), and tags the trial with the sampler. The values are stored at once; a trial that holds them
    all (a random draw, a retry) is left as it is. ``frozen``: the trial as it was queued, if at hand."""
    frozen = frozen if frozen is not None else storage.get_trial(trial_id)
    fixed = frozen.system_attrs.get("fixed_params", {})
    if all(key in frozen.params or key in fixed for key in distributions):
        return
    seed = sampler_seed(study.user_attrs.get("seed", 0), frozen.number)
    # a Study object of its own: the sampler sees the storage as it is now (a Study caches its trials)
    fresh = optuna.load_study(study_name=study.study_name, storage=storage, sampler=make_sampler(name, seed))
    fresh.get_trials(deepcopy=False, states=(RUNNING,))  # Optuna's trial cache learns of this trial
    trial = optuna.Trial(fresh, trial_id)
    for key, distribution in distributions.items():
        suggest(trial, key, distribution)
    trial.set_user_attr("sampler", name)


def cell_seed(cfg: DictConfig, index: int) -> int:
    """The sampler seed of the cell at ``index``: one for all cells when paired."""
    return cfg.search.seed if cfg.search.paired else cfg.search.seed + 1000003 * (index + 1)


def prepare(cfg: DictConfig, cells: list[str], storage) -> list[optuna.Study]:
    """Creates (or reopens) each cell's study and queues the draws it does not hold yet: with values
    (``search.sampler=random``), or to be proposed by the worker that takes them (adaptive samplers)."""
    check_sampler(cfg)
    sampler = cfg.search.get("sampler", "random")
    distributions = parse_space(cfg.search.space)
    drawn: dict[int, list[dict]] = {}  # by sampler seed: paired cells share one list of draws
    task, studies = task_class(cfg.task), []
    for index, cell in enumerate(cells):
        seed = cell_seed(cfg, index)
        study = optuna.create_study(
            storage=storage, study_name=study_name(cfg, cell), direction=direction(task), load_if_exists=True
        )
        attrs = {
            "task": cfg.task.name,
            "cell": cell,
            "search": cfg.search.name,
            "headline": f"valid/{task.headline}",
            "higher_is_better": task.higher_is_better,
            "n_trials": cfg.search.n_trials,
            "paired": cfg.search.paired,
            "seed": seed,
            "sampler": sampler,
        }
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        with experimental_api():
            study.set_metric_names([attrs["headline"]])  # optuna-dashboard names the objective
        with claim_lock(storage):
            fail_stale_trials(study)  # killed workers' trials: failed and queued again
        held = draws_held(study)
        if sampler != "random":
            queue_proposals(study, cfg.search.n_trials, held)
            studies.append(study)
            continue
        if seed not in drawn:
            drawn[seed] = draws(distributions, cfg.search.n_trials, seed)
        for draw, params in enumerate(drawn[seed]):
            if draw not in held:
                study.enqueue_trial(params, user_attrs={"draw": draw, "sampler": "random"})
        studies.append(study)
    return studies


def queue_proposals(study: optuna.Study, n_trials: int, held: set[int]) -> None:
    """Queues the draws below ``n_trials`` the study does not hold, without values (the worker that takes
    one has the sampler propose them); a draw whose killed trials' retries ran out is queued again with
    the values it was proposed, so that it continues from its checkpoint."""
    proposed: dict[int, optuna.trial.FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False):
        draw = t.user_attrs.get("draw")
        if draw is not None and t.params and (draw not in proposed or t.number > proposed[draw].number):
            proposed[draw] = t
    for draw in range(n_trials):
        if draw in held:
            continue
        last, attrs = proposed.get(draw), {"draw": draw}
        if last is not None and "sampler" in last.user_attrs:
            attrs["sampler"] = last.user_attrs["sampler"]
        study.enqueue_trial(dict(last.params) if last is not None else {}, user_attrs=attrs)


def draws_held(study: optuna.Study) -> set[int]:
    """Draws that are queued, running or ended with an outcome (a killed trial's draw is not held
    unless its retry is queued)."""
    held = set()
    for trial in study.get_trials(deepcopy=False):
        if "draw" not in trial.user_attrs:
            continue
        if trial_outcome(trial.state.name, trial.user_attrs) is not Outcome.KILLED:
            held.add(trial.user_attrs["draw"])
    return held


def counts(study: optuna.Study) -> dict:
    """Trials of a study by how they ended (killed workers' trials apart from real failures)."""
    found = {"complete": 0, "pruned": 0, "failed": 0, "killed": 0, "running": 0, "waiting": 0}
    for t in study.get_trials(deepcopy=False):
        outcome = trial_outcome(t.state.name, t.user_attrs)
        found["failed" if outcome.is_failure else COUNTED_AS.get(outcome, outcome.value)] += 1
    return found


COUNTED_AS = {Outcome.COMPLETED: "complete", Outcome.PRUNED: "pruned"}  # the status table's columns


def has_outcome(trial: optuna.trial.FrozenTrial) -> bool:
    """Completed, pruned, or failed for a reason of its own (not a killed or stopped worker's trial)."""
    return trial_outcome(trial.state.name, trial.user_attrs).is_result


def draw_states(study: optuna.Study, n_trials: int) -> dict[str, int]:
    """The study's draws below ``n_trials`` by where they stand: ``done`` (a trial with an outcome),
    ``running``, ``waiting`` (queued), ``exhausted`` (its killed trials' retries ran out: the next launch
    queues it again)."""
    trials: dict[int, list] = {}
    for t in study.get_trials(deepcopy=False):
        draw = t.user_attrs.get("draw")
        if draw is not None and draw < n_trials:
            trials.setdefault(draw, []).append(t)
    found = {"done": 0, "running": 0, "waiting": 0, "exhausted": 0}
    for draw in range(n_trials):
        held = trials.get(draw, [])
        states = {t.state for t in held}
        if any(has_outcome(t) for t in held):
            found["done"] += 1
        else:
            found["running" if RUNNING in states else "waiting" if WAITING in states else "exhausted"] += 1
    return found


def all_draw_states(studies: list[optuna.Study], n_trials: int) -> dict[str, int]:
    found = {"done": 0, "running": 0, "waiting": 0, "exhausted": 0}
    for study in studies:
        for key, value in draw_states(study, n_trials).items():
            found[key] += value
    return found


def shortfall(studies: list[optuna.Study], n_trials: int) -> str | None:
    """One line on what is left where the studies hold fewer than ``n_trials`` outcomes each; else None."""
    found, total = all_draw_states(studies, n_trials), n_trials * len(studies)
    if found["done"] >= total:
        return None
    parts = [f"{found['running']} running elsewhere", f"{found['exhausted']} failed after retries"]
    if found["waiting"]:
        parts.append(f"{found['waiting']} queued")
    return (
        f"{total - found['done']} of {total} trials have no outcome yet ({', '.join(parts)}); "
        "run the same command again to continue"
    )


def running_trials(studies: list[optuna.Study], storage, n_trials: int) -> dict[int, tuple]:
    """The RUNNING trials of draws below ``n_trials``: storage trial id -> (study, trial number)."""
    running = {}
    for study in studies:
        study_id = storage.get_study_id_from_name(study.study_name)
        for t in study.get_trials(deepcopy=False, states=(RUNNING,)):
            if t.user_attrs.get("draw", 0) < n_trials:
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
                running[trial_id] = (study, t.number)
    return running


def heartbeats(storage, trial_ids) -> dict[int, object]:
    """The last recorded heartbeat of each of the trials that has one (SQL storages; {} elsewhere)."""
    engine = getattr(storage, "engine", None)
    if engine is None or not trial_ids:
        return {}
    import sqlalchemy

    query = sqlalchemy.text("SELECT trial_id, heartbeat FROM trial_heartbeats WHERE trial_id IN :ids")
    query = query.bindparams(sqlalchemy.bindparam("ids", expanding=True))
    with engine.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(query, {"ids": list(trial_ids)})}


def fail_unbeating(study: optuna.Study, storage, trial_id: int) -> None:
    """A RUNNING trial that never recorded a heartbeat (its worker died between taking it and its first
    beat, so it never goes stale): failed and queued again, as a stale trial is."""
    try:
        if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
            return
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # it ended meanwhile
    callback = storage.get_heartbeat_stale_trial_callback()
    if callback is not None:
        with experimental_api():
            callback(study, storage.get_trial(trial_id))


def pruner(cfg: DictConfig) -> optuna.pruners.BasePruner:
    """``search.pruner``: none (the papers trained every trial to the end) | median | hyperband."""
    return {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
    }[cfg.search.pruner]()

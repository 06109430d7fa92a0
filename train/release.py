"""Rebuild the shipped model from scratch, across as many sittings as it takes.

    python -m train.release [--dataset DIR] [--time-budget-min 150]    # or: bash train/release.sh

Each call continues where the last one stopped (every run is resumable, and a time
budget stops at an epoch boundary), so the same command is run once a sitting until
it prints "release: done". The steps, all fixed before the first one ran, every
choice made on the validation split (PublicTest):

1. Recipe ablations: each candidate recipe trains on all training faces for a
   short cosine schedule of 8 epochs. Fewer faces or epochs leave a model near
   chance (val ~0.3), too early to tell the recipes apart.
2. Teachers: the chosen recipe's full schedule, once per seed in TEACHER_SEEDS
   (seed 0's run, `release-<recipe>`, is the model shipped before distillation).
3. The teacher count: the ensemble of the first k teachers, for every k, scored on
   validation (train/ensemble.py); the best k, a tie going to fewer.
4. Soft targets: that ensemble's log-probabilities for every training face on the
   app's 10 views, computed once (offline).
5. Distillation ablations (train/distill_plan.py): short student runs that choose
   the distillation temperature and weight, offline or online targets, and the
   student's initialisation.
6. The student: the chosen ablation's settings for the student's full schedule.
7. Export (fp16), a fresh int8 copy calibrated on validation faces, temperatures
   fitted on validation (train/calibrate.py), a validation re-score that must match
   config.json, and then, once, the test split (PrivateTest).

Run folders live outside the work tree (FER_RUNS, default ~/.cache/fer-demo/runs),
and each run's metrics.jsonl is copied into train/release-log/ for the record, with
each choice's scores. A run whose folder is gone but whose committed log shows every
epoch counts as finished by its log when only its score is needed (the recipe
ablations); teacher 0's weights may come from the shipped checkpoint while it is
still that run's model (`adopt_shipped`). `--from-scratch` ignores both and trains
every run.

Training and packaging may happen on two machines: on a GPU machine that holds
only the train and validation splits,

    python -m train.release --dataset DIR --train-only

trains steps 1 to 6; copy each run folder's metrics.jsonl, last/config.json and
best/config.json, and the student's best/ whole, into FER_RUNS/release where
the test split lives, and the same command without --train-only packages. On a
lent GPU machine, train/device_chain.sh does the first half and
tools/device_payload.py carries the data there and these files back; --jobs N
trains a step's runs N at a time there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import report_name
from fer_demo.core.paths import LOCAL_DATASET, REPO_ROOT

from . import calibrate, ensemble, evaluate, export, quantize
from . import distill_plan as plan
from . import train as trainer

RUNS = Path(os.environ.get("FER_RUNS", "~/.cache/fer-demo/runs")).expanduser() / "release"
LOG_DIR = Path(__file__).resolve().parent / "release-log"
# Shared by every run. Crop jitter covers how the app's detector frames a face: the
# crop side's interquartile range is 0.89-1.07 of the box side (bench/end_to_end.py --fit-crop).
COMMON = ["--model", "resnet18", "--batch-size", "128", "--lr", "0.1", "--opt", "sgd", "--sched", "cosine",
          "--warmup-epochs", "1", "--label-smoothing", "0.1", "--ema", "0.999", "--aug-scale", "0.15",
          "--aug-shift", "0.1", "--seed", "0"]
ABLATION = ["--epochs", "8"]


@dataclass(frozen=True)
class Recipe:
    """A candidate: its own training options and the epochs of its release run. Epochs are set so that
    the release run and both ablations together cost at most 250 epochs of resnet18-s2 at 48 px
    (ablations 8 + 8 x 2.8 = 30.4; s1-40's run 75 x 2.8 = 210)."""

    args: tuple[str, ...]
    epochs: int
    cost: float  # training cost per image, as a multiple of s2 at 48 px (bench/train_throughput.py)


RECIPES = {
    "s2-48": Recipe(("--stem", "s2"), epochs=150, cost=1.0),
    "s1-40": Recipe(("--stem", "s1", "--train-crop", "40"), epochs=75, cost=2.8),
}
# cost above is the first GPU-era bench's; the distillation chain's budget uses the 2-core AVX-512 CPU's 2.22
# (train/distill_plan.py), where the chain runs.


class Deadline:
    def __init__(self, minutes: float | None):
        self.end = None if minutes is None else time.time() + minutes * 60

    def minutes_left(self) -> float | None:
        return None if self.end is None else (self.end - time.time()) / 60

    def passed(self) -> bool:
        return self.end is not None and time.time() >= self.end


def run_finished(folder: Path) -> bool:
    """Whether the run trained every epoch, by its `last/config.json` alone: a finished run folder copied
    from another machine without its training state (optimizer, EMA) still counts as finished."""
    if not (folder / "last" / ckpt.CONFIG_FILE).is_file():
        return False
    config = ckpt.config_in(folder / "last")
    return config["epoch"] >= config["train_args"]["epochs"]


def trainer_command(folder: Path, argv: list[str], deadline: Deadline) -> list[str] | None:
    """The trainer's arguments that start or resume the run in `folder` within the deadline; None when it is
    finished or the deadline has passed."""
    if run_finished(folder) or deadline.passed():
        return None
    budget = [] if deadline.end is None else ["--time-budget-min", f"{deadline.minutes_left():.2f}"]
    resumable = (folder / "last" / ckpt.STATE_FILE).is_file()
    return (["--resume", str(folder)] if resumable else argv + ["--out", str(folder)]) + budget


def keep_log(folder: Path) -> None:
    """Copy the run's metrics.jsonl into train/release-log, for the record."""
    if (folder / "metrics.jsonl").is_file():
        LOG_DIR.mkdir(exist_ok=True)
        shutil.copy2(folder / "metrics.jsonl", LOG_DIR / f"{folder.name}.metrics.jsonl")


def train_to_end(folder: Path, argv: list[str], deadline: Deadline) -> bool:
    """Start or resume the run in `folder` within the deadline, here; True once it has trained every epoch."""
    command = trainer_command(folder, argv, deadline)
    if command is not None and trainer.main(command) != 0:
        raise SystemExit(f"release: training {folder.name} failed")
    keep_log(folder)
    return run_finished(folder)


def train_all(runs: dict[Path, list[str]], deadline: Deadline, jobs: int = 1) -> bool:
    """Train every run (folder: arguments) to its end within the deadline; True once all have. With jobs 1 one
    after another in this process; else `jobs` at once, each a trainer process of its own: on one GPU a run of
    these 128-face batches is bound by its host's launches and leaves most of the GPU idle."""
    if jobs == 1:
        return all(train_to_end(folder, argv, deadline) for folder, argv in runs.items())
    commands = {folder: trainer_command(folder, argv, deadline) for folder, argv in runs.items()}
    train_concurrently({folder: c for folder, c in commands.items() if c is not None}, jobs)
    for folder in runs:
        keep_log(folder)
    return all(run_finished(folder) for folder in runs)


def train_concurrently(commands: dict[Path, list[str]], jobs: int) -> None:
    """Run the trainer commands `jobs` at a time, each process on its share of the CPU's cores and logging to
    RUNS/<run>.log; fail naming the runs that failed."""
    threads = max(1, (os.cpu_count() or 1) // jobs)

    def run(folder: Path, command: list[str]) -> int:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f"{folder.name}.log", "a") as log:
            print(f"release: training {folder.name} (log: {log.name})", flush=True)
            argv = [sys.executable, "-m", "train.train", *command, "--torch-threads", str(threads)]
            return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT).returncode

    with ThreadPoolExecutor(jobs) as pool:
        codes = dict(zip(commands, pool.map(run, commands, commands.values())))
    failed = [folder.name for folder, code in codes.items() if code != 0]
    if failed:
        raise SystemExit(f"release: training {', '.join(failed)} failed (their logs: {RUNS}/<run>.log)")


def best_validation(folder: Path) -> float:
    return ckpt.config_in(folder / "best")["metrics"]["accuracy"]


def logged_validation(folder: Path, epochs: int) -> float | None:
    """A gone run's best validation accuracy by its committed log (train/release-log), if that shows every epoch."""
    log = LOG_DIR / f"{folder.name}.metrics.jsonl"
    if folder.exists() or not log.is_file():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return max(r["val_acc"] for r in records) if records and records[-1]["epoch"] >= epochs else None


def choose(scores: dict[str, float]) -> str:
    """The best validation accuracy; a tie goes to the cheaper recipe."""
    return max(scores, key=lambda name: (scores[name], -RECIPES[name].cost))


def recipe_scores(runs: dict[str, tuple[Path, list[str]]], deadline: Deadline, jobs: int,
                  from_scratch: bool) -> dict[str, float] | None:
    """Each recipe ablation's best validation accuracy (by its committed log where its folder is gone, unless
    `from_scratch`; else trained to its end), None while one is unfinished."""
    epochs = int(ABLATION[-1])
    logged = {name: None if from_scratch else logged_validation(folder, epochs) for name, (folder, _) in runs.items()}
    if not train_all({folder: argv for name, (folder, argv) in runs.items() if logged[name] is None}, deadline, jobs):
        return None
    return {name: best_validation(folder) if logged[name] is None else logged[name]
            for name, (folder, _) in runs.items()}


def write_choice(name: str, scores: dict[str, float], chosen: str, **extra) -> None:
    LOG_DIR.mkdir(exist_ok=True)
    record = {"validation_accuracy": scores, "chosen": chosen, **extra}
    (LOG_DIR / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"release: {name} on validation {scores}; chosen {chosen}")


def release(dataset: str, dest: Path, deadline: Deadline, train_only: bool = False,
            from_scratch: bool = False, jobs: int = 1) -> bool:
    """Advance the release as far as the deadline allows, training `jobs` runs of a step at once; True when it
    is complete (with `train_only`, when the student is trained: packaging, and with it the test split, is left
    to a later call)."""
    base = ["--dataset", dataset, *COMMON]
    runs = {name: (RUNS / f"ablation-{name}", base + list(recipe.args) + ABLATION) for name, recipe in RECIPES.items()}
    scores = recipe_scores(runs, deadline, jobs, from_scratch)
    if scores is None:
        return False
    winner = choose(scores)
    write_choice("ablations", scores, winner)
    student = distil(dataset, winner, base, deadline, from_scratch, jobs)
    if student is None:
        return False
    if train_only:
        return True
    if not (RUNS / "exported").is_file():
        package(student, dest, dataset)
        (RUNS / "exported").write_text(str(dest) + "\n")
    return True


def teacher_run(recipe_name: str, base: list[str], seed: int) -> tuple[Path, list[str]]:
    """Teacher `seed`'s run folder and arguments: the recipe's full schedule (seed 0: the release run itself)."""
    recipe = RECIPES[recipe_name]
    name = f"release-{recipe_name}" if seed == 0 else f"teacher-{recipe_name}-seed{seed}"
    return RUNS / name, base + list(recipe.args) + ["--epochs", str(recipe.epochs), "--seed", str(seed)]


def distil(dataset: str, recipe_name: str, base: list[str], deadline: Deadline, from_scratch: bool,
           jobs: int = 1) -> Path | None:
    """Steps 2 to 6: teachers, their count, soft targets, distillation ablations, student; the student's run
    folder once trained, None while the deadline leaves the chain unfinished."""
    recipe = RECIPES[recipe_name]
    runs = dict(teacher_run(recipe_name, base, seed) for seed in plan.TEACHER_SEEDS)
    if not from_scratch:
        adopt_shipped(*teacher_run(recipe_name, base, 0))
    if not train_all(runs, deadline, jobs):
        return None
    teachers = [folder / "best" for folder in runs]
    count = teacher_count(teachers, dataset)
    targets = soft_targets(teachers[:count], dataset)
    train_argv = base + list(recipe.args)

    def ablate(students: dict[str, plan.Student]) -> dict[str, float] | None:
        epochs = ["--epochs", str(plan.ABLATION_EPOCHS)]
        runs = {RUNS / f"distill-{name}": train_argv + epochs + s.args(teachers[:count], targets)
                for name, s in students.items()}
        if not train_all(runs, deadline, jobs):
            return None
        return {name: best_validation(RUNS / f"distill-{name}") for name in students}

    stage_a = ablate(plan.STAGE_A)
    if stage_a is None:
        return None
    best_a = plan.choose(stage_a, plan.STAGE_A, count)
    stage_b = plan.stage_b(best_a, plan.STAGE_A[best_a])
    scores = ablate(stage_b)
    if scores is None:
        return None
    students = plan.STAGE_A | stage_b
    chosen = plan.choose(stage_a | scores, students, count)
    write_choice("distillation", stage_a | scores, chosen, stage_a_winner=best_a, teacher_count=count)
    argv = train_argv + ["--epochs", str(plan.STUDENT_EPOCHS)] + students[chosen].args(teachers[:count], targets)
    return RUNS / "student" if train_to_end(RUNS / "student", argv, deadline) else None


def teacher_count(teachers: list[Path], dataset: str) -> int:
    """Step 3: the ensemble of the first k teachers scored on validation for every k (cached in the runs folder,
    kept in the log); the best accuracy on the targets' views, a tie going to fewer teachers."""
    cached = RUNS / "ensemble.json"
    if not cached.is_file():
        run_step(ensemble.main, ["score", *map(str, teachers), "--dataset", dataset, "--out", str(cached)])
    shutil.copy2(cached, LOG_DIR / "ensemble.json")
    table = json.loads(cached.read_text())["by_count"]
    scores = {k: table[k][plan.TARGET_VIEWS]["accuracy"] for k in table}
    chosen = max(scores, key=lambda k: (scores[k], -int(k)))
    write_choice("teacher-count", scores, chosen, views=plan.TARGET_VIEWS)
    return int(chosen)


def soft_targets(teachers: list[Path], dataset: str) -> Path:
    """Step 4: the teachers' ensemble on the targets' views of every training face, written once."""
    path = RUNS / f"targets-{len(teachers)}-{plan.TARGET_VIEWS}.safetensors"
    if not path.is_file():
        partial = path.with_suffix(".partial")
        run_step(ensemble.main, ["targets", *map(str, teachers), "--dataset", dataset, "--views",
                                 plan.TARGET_VIEWS, "--out", str(partial)])
        partial.rename(path)
    return path


# The release run's options that do not change what it trains.
NOT_RECIPE = ("dataset", "out", "resume", *trainer.PER_INVOCATION)


def adopt_shipped(folder: Path, argv: list[str]) -> None:
    """Make the shipped checkpoint teacher 0's finished run when its folder is gone: only while the shipped file
    is that run's product (the same training arguments) and the committed log shows the run finished."""
    if folder.exists():
        return
    shipped = ckpt.SHIPPED_CHECKPOINT
    config = ckpt.config_in(shipped)
    expected = {k: v for k, v in vars(trainer.parse_args(argv)).items() if k not in NOT_RECIPE}
    trained = vars(trainer.parse_args([])) | config.get("train_args", {})
    epochs = expected["epochs"]
    if any(trained.get(k) != v for k, v in expected.items()) or logged_validation(folder, epochs) is None:
        return
    with ckpt.atomic_dir(folder / "best") as tmp:
        shutil.copy2(shipped / ckpt.MODEL_FILE, tmp / ckpt.MODEL_FILE)
        ckpt.write_config(tmp, config | {"adopted_from": str(shipped)})
    (folder / "last").mkdir()
    ckpt.write_config(folder / "last", config | {"epoch": epochs})
    shutil.copy2(LOG_DIR / f"{folder.name}.metrics.jsonl", folder / "metrics.jsonl")
    print(f"release: teacher 0 is the shipped checkpoint, {folder.name}'s model (its run folder was gone)")


# How far the shipped file's validation accuracy may sit from the figure that chose it during training
# (fp16 storage, and another machine's kernels, move a few faces).
RESCORE_TOLERANCE = 0.002


def record_rescore(dest: Path) -> None:
    """Make config.json's metrics the evaluator's re-score of the shipped file on validation, keeping the
    training-time figure that chose the checkpoint as `metrics_in_training`; fail if they differ by more
    than RESCORE_TOLERANCE."""
    config = ckpt.config_in(dest)
    chosen = config.get("metrics_in_training", config["metrics"])
    rescored = json.loads((dest / report_name("validation", "torch")).read_text())["no_tta"]
    if abs(rescored["accuracy"] - chosen["accuracy"]) > RESCORE_TOLERANCE:
        raise SystemExit(f"release: the shipped file scores {rescored['accuracy']:.4f} on validation, the run "
                         f"chose it at {chosen['accuracy']:.4f}: more than {RESCORE_TOLERANCE} apart")
    kept = {key: rescored[key] for key in ("accuracy", "macro_f1", "ece", "n")}
    config.update(metrics_in_training=chosen, metrics=chosen | kept)
    ckpt.write_config(dest, config)


def package(folder: Path, dest: Path, dataset: str) -> None:
    """Export and quantize the chosen run's best weights into `dest`, then `score` them."""
    run_step(export.main, [str(folder), str(dest)])
    run_step(quantize.main, [str(dest), "--out", str(dest), "--dataset", dataset])
    score(dest, dataset)


def score(dest: Path, dataset: str) -> None:
    """Fit the temperatures on validation, re-score validation (recorded in config.json), then score the test
    split once; every report is written into `dest`, the shipped folder, on purpose."""
    on = ["--checkpoint", str(dest), "--out", str(dest), "--dataset", dataset]  # the shipped files, on purpose
    run_step(calibrate.main, [str(dest), "--dataset", dataset])
    run_step(evaluate.main, on + ["--split", "validation"])
    run_step(evaluate.main, on + ["--split", "validation", "--backend", "onnx-int8"])
    record_rescore(dest)
    run_step(evaluate.main, on + ["--split", "test", "--tta"])
    run_step(evaluate.main, on + ["--split", "test", "--tta", "--backend", "onnx-int8"])


def run_step(main, argv: list[str]) -> None:
    if main(argv) != 0:
        raise SystemExit(f"release: {main.__module__} {' '.join(argv)} failed")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=str(LOCAL_DATASET))
    p.add_argument("--dest", default=str(ckpt.SHIPPED_CHECKPOINT))
    p.add_argument("--time-budget-min", type=float, default=None,
                   help="stop at the last epoch boundary that fits in this many minutes; run again to continue")
    p.add_argument("--train-only", action="store_true",
                   help="stop once the chosen run is trained, before export and the test split (for a GPU "
                   "machine: copy the run folders' best/ and last/config.json back and package where the "
                   "test split lives)")
    p.add_argument("--from-scratch", action="store_true",
                   help="train every run, even those the committed logs show finished, and teacher 0 even while "
                   "the shipped checkpoint is its model")
    p.add_argument("--jobs", type=int, default=1,
                   help="train this many runs of a step at once, as trainer processes of their own (on a GPU, whose "
                   "small-batch runs each leave most of it idle; on 2 CPU cores keep 1)")
    p.add_argument("--rescore", action="store_true",
                   help="only refit the temperatures of the model in --dest and score it again (validation, then "
                   "the test split); for a packaged model whose run folders are gone")
    args = p.parse_args(argv)
    if args.rescore:
        score(Path(args.dest), args.dataset)
        print("release: scored again")
        return 0
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    if release(args.dataset, Path(args.dest), Deadline(args.time_budget_min), args.train_only, args.from_scratch,
               args.jobs):
        print("release: trained; package with the same command without --train-only" if args.train_only
              else "release: done")
    else:
        again = ["--dataset", args.dataset, "--time-budget-min", f"{args.time_budget_min or 150:g}",
                 *(["--train-only"] if args.train_only else []), *(["--from-scratch"] if args.from_scratch else []),
                 *(["--jobs", str(args.jobs)] if args.jobs > 1 else [])]
        print(f"release: unfinished (runs in {RUNS}); continue with python -m train.release {' '.join(again)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The release's distillation chain as data (train/release.py runs it): the teachers, the views of their soft
targets, the student ablations and the student's schedule. Every number here was fixed before the chain's first
run; what the ablations choose is chosen on validation.

Cost, in baseline epochs (one epoch of resnet18-s2 at 48 px; the issue's budget is 600 new ones): on the 2-core
AMD EPYC with AVX-512 bf16 that runs the chain, `python -m bench.train_throughput --distill` gave an s1-40 epoch
2.22, 2.26 and 2.55 baseline epochs in three runs (`RECIPE_COST`, the median) and 0.26 and 0.28 of a student's
step per online teacher. `chain_cost` adds the chain up and a test holds it to the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from fer_demo.core.transforms import FULL_TTA, TTA

TEACHER_SEEDS = (0, 1, 2)  # seed 0's run is the release run of the chosen recipe: the model shipped before
# Offline targets: each training face and its mirror image, averaged. The app's 10 views would cost five times
# as much (a teacher's pass over the training faces on one view costs about half a training epoch).
TARGET_VIEWS = "flip"
# A student that starts from teacher 0's weights gets a new cosine schedule peaking at a fifth of the recipe's LR
# (0.1): high enough to leave the teacher's minimum for the ensemble's, low enough not to erase what it knows.
FINE_TUNE_ARGS = ("--lr", "0.02")
ABLATION_EPOCHS = 8  # as the recipe ablations: 8 epochs from scratch is ablation-<recipe> itself
STUDENT_EPOCHS = 25
BUDGET = 600  # new baseline epochs for the whole chain
RECIPE_COST = 2.26  # an epoch of the s1-40 recipe, in baseline epochs (above)
# The online teachers' forward passes, per teacher, as a share of one student training step (measured, above),
# and one teacher's pass over the training faces on one view at 48 px, in the recipe's epochs (estimated: a
# forward pass is about a third of a training step, times (48 / 40)^2 for the whole face against the 40-px crop).
ONLINE_COST_PER_TEACHER = 0.28
INFERENCE_EPOCHS_PER_VIEW = 0.5
VALIDATION_SHARE = 3589 / 28709  # the ensemble is scored on the validation faces' 10 views


@dataclass(frozen=True)
class Student:
    """How a student learns: distillation temperature and weight (weight 0: from the labels alone), targets
    offline (the file of step 4) or online (the teachers run on each augmented batch), and its start: teacher 0's
    weights with FINE_TUNE_ARGS, or scratch with the recipe's own schedule."""

    temperature: float = 1.0
    weight: float = 0.0
    online: bool = False
    init: str = "teacher"  # or "scratch"

    def args(self, teachers: list[Path], targets: Path) -> list[str]:
        args = ["--kd-temperature", f"{self.temperature:g}", "--kd-weight", f"{self.weight:g}"]
        if self.weight > 0:
            args += ["--teachers", *map(str, teachers)] if self.online else ["--teacher-targets", str(targets)]
        if self.init == "teacher":
            args += ["--init-checkpoint", str(teachers[0]), *FINE_TUNE_ARGS]
        return args

    def cost(self, teacher_count: int) -> float:
        """An epoch's cost as a multiple of the recipe's own epoch."""
        online = self.online and self.weight > 0
        return 1.0 + (ONLINE_COST_PER_TEACHER * teacher_count if online else 0.0)


# Stage A, offline from teacher 0: the labels alone (the control: a second schedule may help by itself), and
# three (temperature, weight) pairs from soft to sharp.
STAGE_A = {
    "labels": Student(weight=0.0),
    "t1-w0.5": Student(temperature=1, weight=0.5),
    "t2-w0.7": Student(temperature=2, weight=0.7),
    "t4-w0.9": Student(temperature=4, weight=0.9),
}
# Stage B: stage A's winner with one thing changed; None where the change means nothing for it.
STAGE_B = {
    "online": lambda s: replace(s, online=True) if s.weight > 0 else None,
    "scratch": lambda s: replace(s, init="scratch"),
}


def stage_b(name: str, winner: Student) -> dict[str, Student]:
    """Stage B's runs, named after stage A's winner `name`."""
    variants = {f"{name}-{change}": make(winner) for change, make in STAGE_B.items()}
    return {key: student for key, student in variants.items() if student is not None}


def choose(scores: dict[str, float], students: dict[str, Student], teacher_count: int) -> str:
    """The best validation accuracy; a tie goes to the cheaper setting."""
    return max(scores, key=lambda name: (scores[name], -students[name].cost(teacher_count)))


def chain_cost(recipe_epochs: int, recipe_cost: float) -> float:
    """The chain's worst case in baseline epochs: every new teacher, the ensemble's scores and targets, both
    ablation stages with the dearest stage-B runs, and an online student of the full teacher count."""
    count = len(TEACHER_SEEDS)
    teachers = (count - 1) * recipe_epochs * recipe_cost
    targets = count * len(TTA[TARGET_VIEWS].views) * INFERENCE_EPOCHS_PER_VIEW * recipe_cost
    scoring = count * len(TTA[FULL_TTA].views) * INFERENCE_EPOCHS_PER_VIEW * VALIDATION_SHARE * recipe_cost
    stage_a = sum(s.cost(count) for s in STAGE_A.values()) * ABLATION_EPOCHS * recipe_cost
    dearest = max(STAGE_A.values(), key=lambda s: sum(b.cost(count) for b in stage_b("x", s).values()))
    stage_b_cost = sum(b.cost(count) for b in stage_b("x", dearest).values()) * ABLATION_EPOCHS * recipe_cost
    student = max(Student(weight=1, online=True).cost(count), 1.0) * STUDENT_EPOCHS * recipe_cost
    return teachers + targets + scoring + stage_a + stage_b_cost + student

"""``tinysparse distill``: train (or load) a teacher, then the same student twice — on the
labels alone, and on the teacher's soft targets (Hinton, Vinyals & Dean 2015) — and
report the three test accuracies; with ``--omit-class`` also the omitted-digit experiment.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from tinysparse import distill
from tinysparse.autograd import no_grad
from tinysparse.cli.common import (
    UsageError,
    add_data_arguments,
    add_optimizer_arguments,
    add_output_arguments,
    add_save_argument,
    add_seed_argument,
    check_save_destination,
    digit_model,
    finish,
    layer_sizes,
    load_data,
    non_negative_int,
    number,
    positive_int,
    save_or_keep,
    train,
    warnings_text,
)
from tinysparse.io import ModelFileError, load
from tinysparse.nn import MODELS, deterministic
from tinysparse.tables import format_table
from tinysparse.train import evaluate

#: the classes of the digit datasets (every model ``digit_model`` builds scores them)
CLASSES = 10
#: Hinton et al.'s MNIST teacher: two hidden layers of 1,200 units (``--teacher mlp``)
TEACHER_HIDDEN = (1200, 1200)
TEACHER_EPOCHS = 20
#: the teacher trains on digits shifted by up to 2 pixels, as Hinton et al.'s MNIST teacher
#: did: on 4,000 digits that makes it clearly better than the students (0.970 against 0.954
#: for LeNet-5 at seed 0), and distillation needs a teacher clearly better than its student
TEACHER_JITTER = 2
#: a 784-100-10 student: small enough to gain from a LeNet-5 teacher on 4,000 digits
STUDENT_HIDDEN = (100,)
#: the flag of each option distill.check_options names
FLAGS = {"temperature": "--temperature", "alpha": "--alpha", "objective": "--objective",
         "jitter": "--jitter"}


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "distill", help="train a teacher, then a student alone and on the teacher's soft "
                        "targets; report the three accuracies")
    models = ", ".join(sorted(MODELS))
    parser.add_argument("--teacher", default="lenet5", metavar="{" + models.replace(
                            ", ", ",") + ",PATH.npz}",
                        help=f"the teacher: a model to train ({models}) or a saved model "
                             f"file (default lenet5)")
    parser.add_argument("--teacher-hidden", type=layer_sizes, default=None,
                        help=f"hidden layer sizes of --teacher mlp (default "
                             f"{','.join(map(str, TEACHER_HIDDEN))}, Hinton et al.'s)")
    parser.add_argument("--teacher-epochs", type=positive_int, default=None,
                        help=f"epochs of the teacher's training (default {TEACHER_EPOCHS})")
    parser.add_argument("--teacher-jitter", type=non_negative_int, default=None,
                        metavar="PIXELS",
                        help=f"train the teacher on digits shifted by up to PIXELS pixels, "
                             f"anew in every batch (default {TEACHER_JITTER}, as Hinton et "
                             f"al.'s teacher; 0 for none)")
    parser.add_argument("--student", default="mlp", choices=sorted(MODELS),
                        help="the student (default mlp)")
    parser.add_argument("--student-hidden", type=layer_sizes, default=None,
                        help=f"hidden layer sizes of --student mlp (default "
                             f"{','.join(map(str, STUDENT_HIDDEN))})")
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=positive_int, default=30,
                        help="epochs of each student's training (default 30)")
    add_optimizer_arguments(parser)
    parser.add_argument("--temperature", type=number, default=4.0, metavar="T",
                        help="softmax temperature of the soft targets, T > 0 (default 4)")
    parser.add_argument("--alpha", type=number, default=0.9, metavar="A",
                        help="weight of the soft term, in [0, 1]; the labels get 1 - A "
                             "(default 0.9)")
    parser.add_argument("--objective", default="soft-targets", choices=distill.OBJECTIVES,
                        help="match the teacher's probabilities at temperature T, or its "
                             "zero-meaned logits (the T -> infinity limit)")
    parser.add_argument("--jitter", type=non_negative_int, default=0, metavar="PIXELS",
                        help="shift each transfer image by up to PIXELS pixels, anew each "
                             "epoch; the teacher labels every shifted batch (default 0)")
    parser.add_argument("--omit-class", type=non_negative_int, default=None, metavar="K",
                        help="leave class K out of the transfer set (and out of the "
                             "student-alone's labels), then shift its bias")
    parser.add_argument("--bias-shift", type=number, default=None, metavar="B",
                        help=f"added to the omitted class's output bias (default "
                             f"{distill.PAPER_BIAS_SHIFT}, Hinton et al.'s)")
    add_seed_argument(parser)
    add_save_argument(parser, "distilled student")
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Every argument, before any training; loads a teacher file (``args.teacher_model``)."""
    try:
        distill.check_options(args.temperature, args.alpha, args.objective, args.jitter)
    except ValueError as error:  # "<option>: <what is wrong>"
        option, _, message = str(error).partition(": ")
        raise UsageError(f"{FLAGS[option]}: {message}") from None
    if args.student_hidden is not None and args.student != "mlp":
        raise UsageError(f"--student-hidden sets the layers of --student mlp; --student "
                         f"{args.student} has fixed layers")
    args.teacher_model = None
    if args.teacher in MODELS:
        if args.teacher_hidden is not None and args.teacher != "mlp":
            raise UsageError(f"--teacher-hidden sets the layers of --teacher mlp; --teacher "
                             f"{args.teacher} has fixed layers")
    else:
        for flag in ("teacher_hidden", "teacher_epochs", "teacher_jitter"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')}: the teacher from "
                                 f"{args.teacher} is already trained")
        args.teacher_model = _load_teacher(args.teacher)
    if args.omit_class is not None and args.omit_class >= CLASSES:
        raise UsageError(f"--omit-class: expected a class of the digits, 0 to {CLASSES - 1}, "
                         f"got {args.omit_class}")
    if args.bias_shift is not None:
        if args.omit_class is None:
            raise UsageError("--bias-shift shifts the bias of the omitted class; give "
                             "--omit-class K")
        if not np.isfinite(args.bias_shift):
            raise UsageError(f"--bias-shift: expected a finite number, got {args.bias_shift}")
    check_save_destination(args)


def _load_teacher(path: str):
    """The model saved in ``path``, checked to take 28x28 digits and score the 10 classes."""
    try:
        teacher = load(path)
    except ModelFileError as error:
        raise UsageError(f"--teacher: {error}; expected one of {', '.join(sorted(MODELS))} "
                         f"or a tinysparse model file (.npz)") from None
    try:
        with deterministic(teacher), no_grad():
            width = teacher(np.zeros((1, 1, 28, 28), dtype=teacher.dtype)).shape
    except ValueError as error:
        raise UsageError(f"--teacher: the model in {path} does not take 28x28 digits "
                         f"({error})") from None
    if len(width) != 2 or width[1] != CLASSES:
        raise UsageError(f"--teacher: the model in {path} gives outputs of shape "
                         f"{tuple(width)[1:]} per digit, the student scores {CLASSES} classes")
    return teacher


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    result: dict[str, Any] = {
        "command": "distill", "teacher": args.teacher, "student": args.student,
        "dataset": args.dataset, "seed": args.seed, "epochs": args.epochs,
        "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr,
        "temperature": args.temperature, "alpha": args.alpha, "objective": args.objective,
        "jitter": args.jitter,
    }
    teacher = args.teacher_model
    if teacher is None:
        result["teacher_epochs"] = args.teacher_epochs or TEACHER_EPOCHS
        result["teacher_jitter"] = (TEACHER_JITTER if args.teacher_jitter is None
                                    else args.teacher_jitter)
        teacher = digit_model(args.teacher, args.teacher_hidden or TEACHER_HIDDEN, args.seed)
        jitter = (distill.jittered_batches(result["teacher_jitter"], args.seed)
                  if result["teacher_jitter"] else None)
        train(teacher, data, args, desc=f"teacher {args.teacher}",
              epochs=result["teacher_epochs"], prepare_batch=jitter)
    result["teacher_test_accuracy"] = evaluate(teacher, *data.test)["accuracy"]

    def student():  # the same initialisation for both students
        return digit_model(args.student, args.student_hidden or STUDENT_HIDDEN, args.seed)

    alone = student()
    labelled = distill.transfer_set(data, args.omit_class)  # the labels the distilled one sees
    alone_history = train(alone, labelled, args, desc=f"student {args.student} alone")
    result["student_alone_test_accuracy"] = evaluate(alone, *data.test)["accuracy"]

    distilled = student()
    history = train(distilled, data, args, desc=f"distil into {args.student}",
                    trainer=lambda model, data, **options: distill.distill(
                        model, teacher, data, **options),
                    temperature=args.temperature, alpha=args.alpha, objective=args.objective,
                    jitter=args.jitter, omit_class=args.omit_class)
    test = evaluate(distilled, *data.test)
    result.update({
        "teacher_parameters": teacher.num_parameters(),
        "student_parameters": distilled.num_parameters(),
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
    })
    if args.omit_class is not None:
        shift = distill.PAPER_BIAS_SHIFT if args.bias_shift is None else args.bias_shift
        result["omit_class"] = args.omit_class
        result["student_alone_omitted_class_accuracy"] = float(np.mean(
            alone.predict(data.x_test[data.y_test == args.omit_class]) == args.omit_class))
        result.update(distill.omitted_class_accuracies(distilled, *data.test, args.omit_class,
                                                       shift))
    result["history"] = [{k: r[k] for k in ("epoch", "train_loss", "train_accuracy")}
                         for r in history.epochs]
    messages = [*(f"student alone: {m}" for m in alone_history.warnings),
                *(f"distilled student: {m}" for m in history.warnings)]
    if messages:
        result["warnings"] = messages
    if args.save:
        result.update(save_or_keep(distilled, args.save, {
            "test_accuracy": test["accuracy"], "dataset": args.dataset,
            "teacher_test_accuracy": result["teacher_test_accuracy"],
            "temperature": args.temperature, "alpha": args.alpha}))
    return finish(args, result, _text(args, result))


def _text(args: argparse.Namespace, result: dict[str, Any]) -> str:
    student = args.student + (f" {','.join(map(str, args.student_hidden or STUDENT_HIDDEN))}"
                              if args.student == "mlp" else "")
    rows = [["teacher", args.teacher, result["teacher_test_accuracy"]],
            ["student alone", student, result["student_alone_test_accuracy"]],
            ["distilled student", student, result["test_accuracy"]]]
    text = (f"distillation on {args.dataset}: {args.objective}, T = {args.temperature:g}, "
            f"alpha = {args.alpha:g}, jitter {args.jitter}, {args.epochs} epochs, seed "
            f"{args.seed}\n\n" + format_table(rows, ["", "model", "test accuracy"]))
    if args.omit_class is not None:
        k, shift = args.omit_class, result["bias_shift"]
        rows = [["student alone", result["student_alone_omitted_class_accuracy"], None],
                ["distilled", result["omitted_class_accuracy_before_shift"],
                 result["other_classes_accuracy_before_shift"]],
                [f"distilled, bias of {k} + {shift:g}",
                 result["omitted_class_accuracy_after_shift"],
                 result["other_classes_accuracy_after_shift"]]]
        text += (f"\n\nclass {k} left out of the transfer set:\n\n"
                 + format_table(rows, ["", f"accuracy on {k}s", "on the other digits"]))
    return (text + warnings_text(result.get("warnings", []))
            + (f"\nsaved to {result['saved_to']}" if args.save else ""))

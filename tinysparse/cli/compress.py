"""``tinysparse compress MODEL OUT``: share a saved model's weights (k-means per layer,
optionally fine-tuning the centroids), write the compressed file, decode it again and
report the bytes of every stage and the test accuracy of the decoded model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tinysparse.autograd import no_grad
from tinysparse.cli.common import (
    UsageError,
    add_data_arguments,
    add_output_arguments,
    add_seed_argument,
    finish,
    integer_in,
    load_data,
    non_negative_int,
    positive_float,
    positive_int,
    train,
    warnings_text,
)
from tinysparse.compress import (
    DEFAULT_CONV_GAP_BITS,
    DEFAULT_FC_GAP_BITS,
    INITIALISATIONS,
    MAX_BITS,
    MIN_BITS,
    check_shareable,
    load_compressed,
    save_compressed,
    share_weights,
)
from tinysparse.data.storage import check_writable
from tinysparse.io import ModelFileError, load
from tinysparse.nn import deterministic
from tinysparse.optim import OPTIMIZERS
from tinysparse.tables import format_table
from tinysparse.train import evaluate

DEFAULT_BITS = 5
#: fine-tuning the centroids: Adam at a tenth of training's learning rate
DEFAULT_FINETUNE_LR = 1e-4
#: the options that only matter when fine-tuning
FINETUNE_OPTIONS = ("lr", "batch_size", "optimizer")

bits = integer_in(MIN_BITS, MAX_BITS)


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "compress", help="weight sharing + Huffman coding of a saved model: bytes per stage "
                         "and the decoded model's accuracy")
    parser.add_argument("model_path", metavar="MODEL", help="a saved model (.npz), pruned "
                        "or not (tinysparse prune --save)")
    parser.add_argument("output", metavar="OUT", help="where to write the compressed file")
    parser.add_argument("--bits", type=bits, default=DEFAULT_BITS,
                        help=f"codebook index width b: 2^b entries, the zero and 2^b - 1 "
                             f"centroids (default {DEFAULT_BITS})")
    parser.add_argument("--fc-gap-bits", type=bits, default=DEFAULT_FC_GAP_BITS,
                        help=f"width of the relative index of fully connected layers "
                             f"(default {DEFAULT_FC_GAP_BITS}, as Han et al.)")
    parser.add_argument("--conv-gap-bits", type=bits, default=DEFAULT_CONV_GAP_BITS,
                        help=f"width of the relative index of convolutions (default "
                             f"{DEFAULT_CONV_GAP_BITS}, as Han et al.)")
    parser.add_argument("--init", default="linear", choices=INITIALISATIONS,
                        help="where k-means starts (default linear, as Han et al. recommend)")
    parser.add_argument("--finetune-epochs", type=non_negative_int, default=0,
                        help="epochs of centroid fine-tuning on the training digits "
                             "(default 0)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help=f"fine-tuning learning rate (default {DEFAULT_FINETUNE_LR:g})")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="fine-tuning batch size (default 64)")
    parser.add_argument("--optimizer", default=None, choices=sorted(OPTIMIZERS),
                        help="fine-tuning optimiser (default adam)")
    add_data_arguments(parser)
    add_seed_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Every argument before any work: the model file loads, takes 28x28 digits and
    scores 10 classes, and can be shared; OUT can be written and is not MODEL; the
    fine-tuning options come with fine-tuning."""
    try:
        model = load(args.model_path)
    except ModelFileError as error:
        raise UsageError(f"MODEL: {error}") from None
    try:
        with deterministic(model), no_grad():
            width = model(np.zeros((1, 1, 28, 28), dtype=model.dtype)).shape
    except ValueError as error:
        raise UsageError(f"MODEL: {args.model_path} does not take 28x28 digits ({error})") \
            from None
    if width != (1, 10):
        raise UsageError(f"MODEL: {args.model_path} gives {width[-1]} outputs, not the 10 "
                         f"digit classes")
    try:
        check_shareable(model, args.bits, args.init)
    except ValueError as error:
        raise UsageError(f"MODEL: {error}") from None
    args.loaded_model = model
    given = [name for name in FINETUNE_OPTIONS if getattr(args, name) is not None]
    if given and args.finetune_epochs == 0:
        raise UsageError(f"--{given[0].replace('_', '-')} sets the centroids' fine-tuning; "
                         f"give --finetune-epochs N")
    args.lr = DEFAULT_FINETUNE_LR if args.lr is None else args.lr
    args.batch_size = 64 if args.batch_size is None else args.batch_size
    args.optimizer = "adam" if args.optimizer is None else args.optimizer
    try:
        args.output = str(check_writable(args.output))
    except OSError as error:
        raise UsageError(f"OUT: {getattr(error, 'strerror', None) or error}") from None
    if Path(args.output).resolve() == Path(args.model_path).resolve():
        raise UsageError("OUT: would replace MODEL; write the compressed file elsewhere")


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    model = args.loaded_model
    given_accuracy = evaluate(model, *data.test)["accuracy"]
    model = share_weights(model, args.bits, args.init, seed=args.seed)
    shared_accuracy = evaluate(model, *data.test)["accuracy"]
    finetuned_accuracy, messages = None, []
    if args.finetune_epochs:
        history = train(model, data, args, desc="fine-tune centroids",
                        epochs=args.finetune_epochs)
        finetuned_accuracy, messages = evaluate(model, *data.test)["accuracy"], history.warnings
    report = save_compressed(model, args.output, args.fc_gap_bits, args.conv_gap_bits)
    decoded = load_compressed(args.output)
    test_accuracy = evaluate(decoded, *data.test)["accuracy"]
    sizes = report.to_dict()
    result: dict[str, Any] = {
        "command": "compress", "model_path": args.model_path, "dataset": args.dataset,
        "seed": args.seed, "bits": args.bits, "fc_gap_bits": args.fc_gap_bits,
        "conv_gap_bits": args.conv_gap_bits, "init": args.init,
        "finetune_epochs": args.finetune_epochs,
        **({"lr": args.lr, "batch_size": args.batch_size, "optimizer": args.optimizer}
           if args.finetune_epochs else {}),
        **sizes,
        "uncompressed_test_accuracy": given_accuracy,
        "shared_test_accuracy": shared_accuracy,
        "finetuned_test_accuracy": finetuned_accuracy,
        "test_accuracy": test_accuracy,
        "saved_to": report.path,
    }
    if messages:
        result["warnings"] = messages
    return finish(args, result, _text(args, report, result, messages))


def _text(args: argparse.Namespace, report, result: dict[str, Any], messages) -> str:
    rows = [[layer.name, layer.kind, layer.weights, layer.kept, layer.padding, layer.dense,
             layer.csr, layer.quantised, layer.huffman, f"{layer.dense / layer.huffman:.1f}x"]
            for layer in report.layers]
    rows.append(["header", "", None, None, None, None, None, None, report.header, ""])
    total = report.total
    rows.append(["total", "", sum(layer.weights for layer in report.layers),
                 sum(layer.kept for layer in report.layers),
                 sum(layer.padding for layer in report.layers), total["dense"], total["csr"],
                 total["quantised"], total["huffman"], f"{report.compression:.1f}x"])
    stages = result["compression_by_stage"]
    finetuned = (f", after {args.finetune_epochs} epochs of fine-tuning "
                 f"{result['finetuned_test_accuracy']:.4f}" if args.finetune_epochs else "")
    return (
        f"{args.model_path}: {args.bits}-bit codebooks ({args.init} k-means), relative "
        f"indices of {args.fc_gap_bits} bits (fc) and {args.conv_gap_bits} bits (conv)\n\n"
        + format_table(rows, ["layer", "kind", "weights", "kept", "padding", "dense",
                              "csr", "quantised", "huffman", "ratio"])
        + f"\n\nbytes: dense float32; CSR (float32 values, int32 indices); quantised "
          f"({args.bits}-bit indices, gaps, codebook); huffman (the file, header included)"
        + f"\ncompression vs dense float32: CSR {stages['csr']:.1f}x, quantised "
          f"{stages['quantised']:.1f}x, Huffman {stages['huffman']:.1f}x"
        + f"\ntest accuracy: given model {result['uncompressed_test_accuracy']:.4f}, "
          f"weights shared {result['shared_test_accuracy']:.4f}{finetuned}, decoded from "
          f"{report.path} {result['test_accuracy']:.4f}"
        + warnings_text(messages)
        + f"\nsaved to {report.path} ({total['huffman']:,} bytes)"
    )

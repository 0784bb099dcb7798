"""Export a sentence-transformers model (BERT-style, mean pooling) to one ONNX graph, from disk only.

The graph takes `input_ids` and `attention_mask` (int64, batch x tokens, any size) and returns
`embedding` (float32, batch x dim): the transformer, then mean pooling over the real tokens and
L2 normalisation, written exactly as sentence-transformers' Pooling and Normalize modules compute
them. Only the export needs torch; running the graph needs ONNX Runtime alone.

`python -m services.embedder.providers.onnx_export` builds the graph the settings call for (the
embedder image does this at build time, so a container never exports at start-up);
`python -m services.embedder.providers.onnx_export MODEL_DIR TARGET` exports one model to one file
(how the embedder exports, in a child process).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The opset ONNX Runtime has long supported and the legacy (TorchScript) exporter writes well.
OPSET = 17


def export_sentence_model(model_dir: Path, target: Path) -> None:
    """Write the ONNX graph of the model in `model_dir` to `target` (atomically: a reader never sees half a file)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()

    class SentenceEmbedding(torch.nn.Module):
        """Transformer, mean pooling, L2 normalisation: sentence-transformers' modules 0-2 in one forward."""

        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).expand(tokens.size()).to(tokens.dtype)
            summed = torch.sum(tokens * mask, 1)
            counts = torch.clamp(mask.sum(1), min=1e-9)
            return torch.nn.functional.normalize(summed / counts, p=2, dim=1)

    # Eager attention: the plainest graph to trace; ONNX Runtime fuses it again when it loads the graph.
    transformer = transformers.AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    module = SentenceEmbedding(transformer).eval()
    # [CLS] hello world [SEP] [PAD]: a padded example, so the traced graph keeps the masking path.
    input_ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 7592, 102, 0, 0]], dtype=torch.int64)
    attention_mask = (input_ids != 0).to(torch.int64)
    dynamic = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about Python-level shape checks in transformers; the graph is verified
            # against sentence-transformers by the tests instead.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (input_ids, attention_mask),
                str(partial),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={**dynamic, "embedding": {0: "batch"}},
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Export a sentence-transformers model to ONNX.")
    parser.add_argument("model_dir", nargs="?", type=Path, help="the model's directory (default: the settings')")
    parser.add_argument("target", nargs="?", type=Path, help="the .onnx file to write")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from services.embedder.providers.onnx import EXPORT_CANNOT_WRITE, ensure_onnx_graph

    if args.model_dir is None or args.target is None:
        from services.embedder.settings import Settings

        settings = Settings()
        print(ensure_onnx_graph(settings.local_model_name, settings.embedder_model_cache), flush=True)
        return
    try:
        export_sentence_model(args.model_dir, args.target)
    except OSError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(EXPORT_CANNOT_WRITE)


if __name__ == "__main__":
    main()

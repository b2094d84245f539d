"""The cached path checks itself at load on the loaded model: two text-only prompts of different lengths
(left padding), prefilled once with two rows each, decoded three steps with a beam reorder, against the
model's full forward over the same sequences. Any failure or difference stops the run with one line.

Unlike the owned families' tiny twins, this runs the checkpoint itself (a few dozen tokens): a twin of an
arbitrary transformers architecture cannot be built generically. The tolerance is relative to the logits'
scale and looser in half precision, where cached and full passes round differently; a broken cache or
wrong positions differ by whole units.
"""

from __future__ import annotations

import torch

from flamingo_eval.models.flamingo.selfcheck import FastPathMismatch, verdict
from flamingo_eval.models.transformers import decode
from flamingo_eval.prompt import Chunk, Prompt

# largest |cached - full| / max |logit|: fp32 rounding only; half precision rounds the two paths differently
# (not measured on a full-size checkpoint here: no GPU in this session), a broken cache differs by whole units
RELATIVE = {torch.float32: 1e-4, torch.bfloat16: 0.1, torch.float16: 0.05}


def _prompts() -> list[list[Chunk]]:
    demo = Chunk(image=None, text="Question:how many dogs are there? Short answer:two", answer="two")
    query = Chunk(image=None, text="Question:what is on the table? Short answer:")
    return [Prompt([demo, query], separator="\n"), Prompt([query], separator="\n")]


@torch.inference_mode()
def largest_difference(adapter) -> float:
    """Largest |cached - full| logit difference over the prefill and three steps, relative to the logits' scale."""
    model, model_type = adapter.model, adapter.model_type
    batch = adapter.inputs(_prompts(), 3)
    ids, mask = batch["input_ids"].to(model.device), batch["attention_mask"].to(model.device)
    beams, g = 2, torch.Generator().manual_seed(1)

    def full(rows_ids: torch.Tensor, rows_mask: torch.Tensor) -> torch.Tensor:
        extra = {k: v.to(model.device) for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
        extra = {k: v[origin] for k, v in extra.items()}  # text only: every extra is per token and per row
        extra = {k: torch.cat([v, v.new_zeros((v.shape[0], rows_ids.shape[1] - v.shape[1]))], 1) for k, v in extra.items()}
        inputs = {"attention_mask": rows_mask, **extra}
        pos = decode.positions(model, model_type, rows_ids, {"input_ids": rows_ids, **inputs})
        if pos is not None:
            inputs["position_ids"] = pos
        return model(input_ids=rows_ids, **inputs).logits[:, -1].float()

    origin = torch.arange(len(ids), device=ids.device)
    logits, state = decode.prefill(model, model_type, batch, beams)
    scale = max(1.0, logits.abs().max().item())
    worst = (logits - full(ids, mask)).abs().max().item()
    origin = origin.repeat_interleave(beams)
    rows_ids, rows_mask = ids[origin], mask[origin]
    reorder = torch.arange(len(rows_ids), device=ids.device).view(-1, beams).flip(-1).flatten()
    for step in range(3):
        tokens = torch.randint(0, len(adapter.tokenizer) - 1, (len(rows_ids), 1), generator=g).to(ids.device)
        if step == 1:
            state.reorder(reorder)
            rows_ids, rows_mask, origin = rows_ids[reorder], rows_mask[reorder], origin[reorder]
        cached = decode.extend(model, state, tokens, False)
        rows_ids = torch.cat([rows_ids, tokens], dim=1)
        rows_mask = torch.cat([rows_mask, torch.ones_like(tokens)], dim=1)
        worst = max(worst, (cached - full(rows_ids, rows_mask)).abs().max().item())
    return worst / scale * RELATIVE[torch.float32] / RELATIVE.get(model.dtype, RELATIVE[torch.float32])


def check_cached_decoding(adapter) -> float:
    """Raise ``FastPathMismatch`` (one line) unless cached decoding equals the full forward."""
    return verdict(f"the transformers {adapter.model_type} model", lambda: largest_difference(adapter))


__all__ = ["FastPathMismatch", "check_cached_decoding"]

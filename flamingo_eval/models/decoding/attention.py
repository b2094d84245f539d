"""Cascade attention: the new tokens of every beam against their query's prompt (stored once) and against
their own generated suffix, joined in one softmax row. Exact: the same scores and softmax as attention over
each beam's own copy of prompt + suffix, without the copies (Hydragen; FlashInfer's cascade attention).

Every family uses it: ALiBi is an additive bias on the scores, rotary positions are already in q and k.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flamingo_eval.models.lm.decoder import alibi_bias


@dataclass(frozen=True)
class SuffixTree:
    """A token tree packed into each row's suffix: ``offset`` (R, S) how many places after the prompt each
    suffix token sits (its depth in the tree: its rotary position, its ALiBi distance), ``visible`` (R, S, S)
    which suffix tokens each one attends to (its ancestors and itself)."""

    offset: torch.Tensor
    visible: torch.Tensor


def cascade_attention(q: torch.Tensor, prompt_keys: torch.Tensor, prompt_values: torch.Tensor,
                      prompt_real: torch.Tensor, suffix_keys: torch.Tensor, suffix_values: torch.Tensor,
                      slopes: torch.Tensor | None, scale: float, window: int | None = None,
                      tree: SuffixTree | None = None) -> torch.Tensor:
    """Shapes: q (R, heads, t, d), the t newest tokens of R = Q x beams rows, a query's beams adjacent;
    prompt keys/values (Q, kv_heads, P, d) and ``prompt_real`` (Q, P) bool (False: left padding); suffix
    keys/values (R, kv_heads, S, d) with the t newest last; ``window``: a token sees only keys fewer than
    ``window`` positions back (Mistral's sliding window). Returns (R, heads, t, d).

    ``tree``: the suffix is a token tree packed into each row (rank's options sharing their prefixes), not a
    sequence: which suffix keys each new token sees and how far after the prompt each key sits.

    A query's beams, and the query heads sharing a key head, are one block of rows against the prompt:
    its keys are read once per query, not once per beam. Scores in the inputs' dtype, softmax in float32."""
    rows, heads, t, d = q.shape
    queries, kv_heads, prompt, _ = prompt_keys.shape
    beams, groups, suffix = rows // queries, heads // kv_heads, suffix_keys.shape[2]

    by_query = q.reshape(queries, beams, kv_heads, groups * t, d).transpose(1, 2).reshape(queries, kv_heads, -1, d)
    s_prompt = torch.matmul(by_query, prompt_keys.transpose(-1, -2)) * scale  # (Q, kv, beams*groups*t, P)
    s_prompt = s_prompt.view(queries, kv_heads, beams, groups * t, prompt).transpose(1, 2)
    s_prompt = s_prompt.reshape(rows, heads, t, prompt)
    by_row = q.reshape(rows, kv_heads, groups * t, d)
    s_suffix = (torch.matmul(by_row, suffix_keys.transpose(-1, -2)) * scale).view(rows, heads, t, suffix)

    scores = torch.cat([s_prompt, s_suffix], dim=-1).float()
    prompt_visible = prompt_real.bool().repeat_interleave(beams, dim=0)[:, None, :].expand(rows, t, prompt)
    if tree is None:
        if slopes is not None:
            scores = scores + alibi_bias(slopes, prompt + suffix, q.device)[None, :, None, :]
        newest = torch.arange(t, device=q.device)[:, None] + (suffix - t)  # suffix index of each new token
        visible = torch.cat([
            prompt_visible, (torch.arange(suffix, device=q.device)[None, :] <= newest)[None].expand(rows, t, suffix),
        ], dim=-1)[:, None]  # (R, 1, t, P + S)
        if window is not None:  # keys are at indices 0..P+S-1 of the padded row; the new tokens at P + newest
            recent = torch.arange(prompt + suffix, device=q.device)[None, :] > (prompt + newest) - window
            visible = visible & recent[None, None]
    else:  # the same with each key's and query's place after the prompt taken from the tree, per row
        offset = tree.offset[:, :suffix].to(q.device)
        key_at = torch.cat([torch.arange(prompt, device=q.device).expand(rows, prompt), prompt + offset], dim=-1)
        if slopes is not None:  # slope * (j - last key) with j the key's place: MPT's bias, as above
            scores = scores + slopes.to(q.device)[None, :, None, None] * (key_at - (prompt + suffix - 1)).float()[:, None, None, :]
        visible = torch.cat([prompt_visible, tree.visible[:, suffix - t:suffix, :suffix].to(q.device)], dim=-1)
        if window is not None:
            query_at = prompt + offset[:, suffix - t:]  # (R, t)
            visible = visible & (key_at[:, None, :] > query_at[:, :, None] - window)
        visible = visible[:, None]
    probs = scores.masked_fill(~visible, torch.finfo(torch.float32).min).softmax(dim=-1).to(prompt_values.dtype)

    p_prompt = probs[..., :prompt].reshape(queries, beams, kv_heads, groups * t, prompt).transpose(1, 2)
    out = torch.matmul(p_prompt.reshape(queries, kv_heads, -1, prompt), prompt_values)
    out = out.view(queries, kv_heads, beams, groups * t, d).transpose(1, 2).reshape(rows, heads, t, d)
    p_suffix = probs[..., prompt:].reshape(rows, kv_heads, groups * t, suffix)
    return out + torch.matmul(p_suffix, suffix_values).view(rows, heads, t, d)

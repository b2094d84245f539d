"""Greedy and beam search with the semantics of transformers' ``generate`` (what OpenFlamingo's
evaluation runs): log-softmax first, then banned tokens and ``min_new_tokens`` set to -inf;
beam search keeps 2 x num_beams candidates per step, finishes hypotheses at the stop token or
at ``max_new_tokens``, and stops early with the ``early_stopping=False`` heuristic.

The model is reached only through ``step(state, tokens) -> logits`` and ``state.reorder(rows)``,
so a faster model pass can reuse these loops unchanged. A state that also has ``keep_queries(queries)``
is told when queries are finished (greedy: a row emitted the stop token; beam search: no running beam
can beat its finished hypotheses, or, with length_penalty <= 0, its best one) and drops their rows, so
later steps compute only what still runs; the results are the same, since a finished query's output can
no longer change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Step = Callable[[object, torch.Tensor], torch.Tensor]
NEG = -1.0e9


StopIds = int | Sequence[int]


def stop_tensor(eos_id: StopIds, device) -> torch.Tensor:
    """The stop ids as a tensor: one id (``<|endofchunk|>``) or several (EOS and every newline token)."""
    ids = [eos_id] if isinstance(eos_id, int) else list(eos_id)
    if not ids:
        raise ValueError("decoding needs at least one stop token id")
    return torch.tensor(ids, dtype=torch.long, device=device)


def _process(logits: torch.Tensor, generated: int, stops: torch.Tensor, min_new_tokens: int,
             banned: Sequence[int]) -> torch.Tensor:
    scores = logits.clone()
    if generated < min_new_tokens:
        scores[:, stops] = -float("inf")
    if banned:
        scores[:, list(banned)] = -float("inf")
    return scores


def greedy(
    first_logits: torch.Tensor,
    state,
    step: Step,
    *,
    eos_id: StopIds,
    max_new_tokens: int,
    min_new_tokens: int = 0,
    banned: Sequence[int] = (),
) -> list[list[int]]:
    """Argmax decoding per row; a row stops after emitting a stop id (kept in its output)."""
    rows = first_logits.shape[0]
    stops = stop_tensor(eos_id, first_logits.device)
    out: list[list[int]] = [[] for _ in range(rows)]
    alive = torch.arange(rows)  # the output row of each state row
    running = torch.ones(rows, dtype=torch.bool)
    can_drop = hasattr(state, "keep_queries")
    logits = first_logits
    for t in range(max_new_tokens):
        tokens = _process(logits, t, stops, min_new_tokens, banned).argmax(dim=-1).cpu()
        for i in torch.nonzero(running).flatten().tolist():
            out[int(alive[i])].append(int(tokens[i]))
        running &= ~torch.isin(tokens, stops.cpu())
        if t + 1 == max_new_tokens or not running.any():
            break
        if can_drop and not running.all():
            keep = torch.nonzero(running).flatten()
            state.keep_queries(keep.to(first_logits.device))
            alive, running, tokens = alive[keep], running[keep], tokens[keep]
        tokens = torch.where(running, tokens, torch.full_like(tokens, int(stops[0])))
        logits = step(state, tokens[:, None].to(first_logits.device))
    return out


def beam_search(
    first_logits: torch.Tensor,
    state,
    step: Step,
    *,
    num_beams: int,
    eos_id: StopIds,
    max_new_tokens: int,
    min_new_tokens: int = 0,
    length_penalty: float = 0.0,
    banned: Sequence[int] = (),
) -> list[list[int]]:
    """Best hypothesis per query. ``first_logits``/``state`` hold num_beams identical rows per query."""
    k = num_beams
    batch = first_logits.shape[0] // k
    vocab = first_logits.shape[1]
    width = 2 * k  # candidates kept per step: enough to continue k beams even if k of them end
    dev = first_logits.device
    stops = stop_tensor(eos_id, dev)

    run_scores = torch.full((batch, k), NEG, device=dev)
    run_scores[:, 0] = 0.0  # identical beams at first: expand only the first one
    run_seqs = torch.zeros((batch, k, 0), dtype=torch.long, device=dev)
    fin_scores = torch.full((batch, k), NEG, device=dev)
    fin_seqs = torch.zeros((batch, k, max_new_tokens), dtype=torch.long, device=dev)
    fin_lens = torch.zeros((batch, k), dtype=torch.long, device=dev)
    fin_done = torch.zeros((batch, k), dtype=torch.bool, device=dev)
    improvable = torch.ones((batch, 1), dtype=torch.bool, device=dev)
    first_k = torch.arange(width, device=dev) < k
    batch_offset = (torch.arange(batch, device=dev) * k)[:, None]
    alive = list(range(batch))  # the query of each state query
    results: list[list[int]] = [[] for _ in range(batch)]
    can_drop = hasattr(state, "keep_queries")

    logits = first_logits
    for t in range(max_new_tokens):
        logp = torch.log_softmax(logits.float(), dim=-1)
        logp = _process(logp, t, stops, min_new_tokens, banned)
        total = (logp.view(batch, k, vocab) + run_scores[:, :, None]).view(batch, k * vocab)
        cand_scores, cand_idx = torch.topk(total, width)
        cand_beam = cand_idx // vocab
        cand_tok = cand_idx % vocab
        cand_seqs = torch.cat([torch.gather(run_seqs, 1, cand_beam[:, :, None].expand(-1, -1, t)), cand_tok[:, :, None]], dim=2)
        ends = torch.isin(cand_tok, stops) | (t + 1 >= max_new_tokens)

        # the best k candidates that did not end keep running
        keep = torch.topk(cand_scores + ends.float() * NEG, k)[1]
        run_scores = torch.gather(cand_scores + ends.float() * NEG, 1, keep)
        run_seqs = torch.gather(cand_seqs, 1, keep[:, :, None].expand(-1, -1, t + 1))
        src_rows = (torch.gather(cand_beam, 1, keep) + batch_offset).flatten()

        # candidates among the top k that ended compete with the finished hypotheses
        just_done = ends & first_k[None, :]
        scored = cand_scores / ((t + 1) ** length_penalty)
        scored = scored + (~improvable).float() * NEG + (~just_done).float() * NEG
        padded = torch.zeros((batch, width, max_new_tokens), dtype=torch.long, device=dev)
        padded[:, :, : t + 1] = cand_seqs
        all_scores = torch.cat([fin_scores, scored], dim=1)
        best = torch.topk(all_scores, k)[1]
        fin_scores = torch.gather(all_scores, 1, best)
        fin_seqs = torch.gather(torch.cat([fin_seqs, padded], 1), 1, best[:, :, None].expand(-1, -1, max_new_tokens))
        fin_lens = torch.gather(torch.cat([fin_lens, torch.full((batch, width), t + 1, device=dev)], 1), 1, best)
        fin_done = torch.gather(torch.cat([fin_done, just_done], 1), 1, best)

        # can a running beam still beat the worst finished one? (length taken as the current one)
        best_running = run_scores[:, :1] / ((t + 1) ** length_penalty)
        worst_finished = torch.where(fin_done, fin_scores.min(dim=1, keepdim=True)[0], torch.full_like(fin_scores, NEG))
        improvable = improvable & (best_running > worst_finished).any(dim=-1, keepdim=True)
        if not improvable.any() or bool(ends.all()):
            break
        # With length_penalty <= 0 a score only falls as a sequence grows, so once the best running beam
        # is below the best finished hypothesis the output (the best one) is settled, even if HF would run on
        # to fill its other hypotheses: drop such queries too.
        settled = ~improvable[:, 0]
        if length_penalty <= 0:
            settled = settled | (best_running[:, 0] < fin_scores[:, 0])
        if can_drop and bool(settled.any()):  # drop the finished queries; keep their best
            for b in torch.nonzero(settled).flatten().tolist():
                results[alive[b]] = fin_seqs[b, 0, : int(fin_lens[b, 0])].tolist()
            q = torch.nonzero(~settled).flatten()
            if len(q) == 0:
                alive, batch = [], 0
                break
            alive = [alive[b] for b in q.tolist()]
            run_scores, run_seqs, fin_scores, fin_seqs, fin_lens, fin_done, improvable = (
                x[q] for x in (run_scores, run_seqs, fin_scores, fin_seqs, fin_lens, fin_done, improvable)
            )
            src_rows = (src_rows.view(batch, k)[q] - batch_offset[q] + batch_offset[: len(q)]).flatten()
            batch, batch_offset = len(q), batch_offset[: len(q)]
            state.keep_queries(q)
        state.reorder(src_rows)
        logits = step(state, run_seqs[:, :, -1].reshape(-1, 1))

    for b in range(batch):
        results[alive[b]] = fin_seqs[b, 0, : int(fin_lens[b, 0])].tolist()
    return results

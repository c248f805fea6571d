"""CPU / single-GPU engine on plain `transformers` models: a batched sampler with a KV cache, and
the teacher-forced log-prob computation the learner uses.

`HFGenerator.generate` left-pads a chunk of prompts, runs one prefill, then decodes one token per
step for every row from the KV cache. Temperature, top-k and top-p are applied to the logits; the
log-probability recorded for each sampled token is the one under that processed distribution (what
the PPO ratio compares against). Rows stop on an EOS id or when a stop string appears (the stop
string is kept in the text, so ``</answer>`` is visible to format rewards).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from r1lab.types import Rollout, SamplingParams


def eos_ids_of(model, tokenizer) -> list[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    ids = ids if isinstance(ids, list | tuple) else [ids]
    return [int(i) for i in ids if i is not None]


def process_logits(logits_BV: torch.Tensor, sampling: SamplingParams) -> torch.Tensor:
    """Log-probs of the sampling distribution: temperature, then top-k, then top-p.

    Shapes: logits_BV (B, V) -> logp_BV (B, V), with -inf outside the kept set.
    """
    assert logits_BV.dim() == 2
    logits = logits_BV.float() / max(sampling.temperature, 1e-6)
    if sampling.top_k and sampling.top_k < logits.size(-1):
        kth = torch.topk(logits, sampling.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the mass strictly before it already reaches top_p (keeps >= 1 token)
        drop_sorted = (probs.cumsum(-1) - probs) >= sampling.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, idx, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return torch.log_softmax(logits, dim=-1)


class HFGenerator:
    """`Generator` over a `transformers` causal LM and its tokenizer."""

    def __init__(self, model, tokenizer, *, batch_size: int = 64, device: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = device or next(model.parameters()).device
        self.eos_ids = eos_ids_of(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        rows = [(p, i, j) for i, p in enumerate(prompts) for j in range(n)]
        gen = torch.Generator(device="cpu")
        gen.manual_seed(sampling.seed if sampling.seed is not None else torch.seed() % 2**63)
        out: list[Rollout] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for s in range(0, len(rows), self.batch_size):
                out += self._generate_chunk(rows[s : s + self.batch_size], sampling, gen)
        finally:
            self.model.train(was_training)
        return out

    def _generate_chunk(self, rows, sampling: SamplingParams, gen) -> list[Rollout]:
        tok = self.tokenizer
        prompt_ids = [tok(p, add_special_tokens=False)["input_ids"] for p, _, _ in rows]
        B, P = len(rows), max(len(ids) for ids in prompt_ids)
        input_ids = torch.full((B, P), self.pad_id, dtype=torch.long)
        attn = torch.zeros((B, P), dtype=torch.long)
        for b, ids in enumerate(prompt_ids):
            input_ids[b, P - len(ids) :] = torch.tensor(ids)
            attn[b, P - len(ids) :] = 1
        input_ids, attn = input_ids.to(self.device), attn.to(self.device)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        eos = torch.tensor(self.eos_ids, device=self.device)
        done = torch.zeros(B, dtype=torch.bool, device=self.device)
        finish = ["length"] * B
        tokens: list[list[int]] = [[] for _ in range(B)]
        logps: list[list[float]] = [[] for _ in range(B)]
        past = None
        step_ids, step_pos = input_ids, pos
        for t in range(sampling.max_new_tokens):
            res = self.model(
                input_ids=step_ids,
                attention_mask=attn,
                position_ids=step_pos,
                past_key_values=past,
                use_cache=True,
            )
            past = res.past_key_values
            logits = res.logits[:, -1, :]
            if t < sampling.min_new_tokens and len(eos):
                logits = logits.index_fill(-1, eos, float("-inf"))
            logp = process_logits(logits, sampling)
            nxt = torch.multinomial(logp.exp().cpu(), 1, generator=gen).to(self.device)
            nxt_logp = logp.gather(-1, nxt).squeeze(-1)
            nxt_list, lp_list = nxt.squeeze(-1).tolist(), nxt_logp.tolist()
            for b in range(B):
                if done[b]:
                    continue
                tokens[b].append(nxt_list[b])
                logps[b].append(lp_list[b])
                if (
                    nxt_list[b] in self.eos_ids
                    or sampling.stop
                    and self._hit_stop(tokens[b], sampling.stop)
                ):
                    done[b], finish[b] = True, "stop"
            if bool(done.all()):
                break
            step_ids = nxt.masked_fill(done.unsqueeze(-1), self.pad_id)
            attn = torch.cat([attn, torch.ones((B, 1), dtype=attn.dtype, device=self.device)], 1)
            step_pos = step_pos[:, -1:] + 1
        return [
            Rollout(
                prompt_index=i,
                sample_index=j,
                prompt=p,
                prompt_ids=prompt_ids[b],
                completion_ids=tokens[b],
                text=self._text(tokens[b], sampling.stop),
                logprobs=logps[b],
                finish_reason=finish[b],  # type: ignore[arg-type]
            )
            for b, (p, i, j) in enumerate(rows)
        ]

    def _hit_stop(self, ids: list[int], stops: tuple[str, ...]) -> bool:
        tail = self.tokenizer.decode(ids[-16:], skip_special_tokens=True)
        return any(s in tail for s in stops)

    def _text(self, ids: list[int], stops: tuple[str, ...]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        for s in stops:
            k = text.find(s)
            if k >= 0:
                text = text[: k + len(s)]
        return text


def pack_sequences(
    prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Right-padded prompt+completion rows for teacher forcing.

    Returns input_ids (B, L), attention_mask (B, L), completion mask (B, T) and the offset: the
    completion of row b occupies input positions prompt_len_b .. prompt_len_b + T_b - 1, and its
    log-probs are read from a (B, T)-aligned gather (see `completion_logprobs`).
    """
    B = len(prompt_ids)
    T = max(1, max(len(c) for c in completion_ids))
    L = max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids))
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    attn = torch.zeros((B, L), dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.float32)
    for b, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        row = list(p) + list(c)
        input_ids[b, : len(row)] = torch.tensor(row)
        attn[b, : len(row)] = 1
        mask[b, : len(c)] = 1.0
    return input_ids, attn, mask, T


def _plain_lm_head(model):
    """The LM head's weight/bias when logits are exactly ``hidden @ W.T + b`` (no soft-capping or
    scaling in the config), else None (then full logits are computed)."""
    cfg = getattr(model, "config", None)
    if any(getattr(cfg, a, None) for a in ("final_logit_softcapping", "logit_scale")):
        return None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    decoder = getattr(model, "base_model", None)
    if head is None or decoder is None or decoder is model or not hasattr(head, "weight"):
        return None
    return decoder, head


def completion_logprobs(
    model,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    *,
    pad_id: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
    chunk_size: int = 1024,
):
    """Teacher-forced log-probs of each completion token: (logp_BT, mask_BT[, entropy_BT]).

    Differentiable when called under grad. Positions past a row's completion are 0 in mask. For a
    plain LM head the logits are computed ``chunk_size`` tokens at a time from the hidden states
    of the completion positions only, so B x L x V logits never exist at once (memory).
    """
    from r1lab.algo.logprobs import entropy_from_logits, logprobs_from_hidden, token_logprobs

    device = next(model.parameters()).device
    input_ids, attn, mask, T = pack_sequences(prompt_ids, completion_ids, pad_id)
    input_ids, attn, mask = input_ids.to(device), attn.to(device), mask.to(device)
    B = len(prompt_ids)
    # the state at position prompt_len + t - 1 predicts completion token t
    starts = torch.tensor([len(p) - 1 for p in prompt_ids], device=device)
    idx = (starts.unsqueeze(1) + torch.arange(T, device=device).unsqueeze(0)).clamp(
        max=input_ids.size(1) - 1
    )
    targets = torch.zeros((B, T), dtype=torch.long, device=device)
    for b, c in enumerate(completion_ids):
        if len(c):
            targets[b, : len(c)] = torch.tensor(c, device=device)
    plain = _plain_lm_head(model)
    if plain is not None:
        decoder, head = plain
        hidden = decoder(input_ids=input_ids, attention_mask=attn, use_cache=False)[0]
        hidden_BTH = hidden.gather(1, idx.unsqueeze(-1).expand(B, T, hidden.size(-1)))
        logp, ent = logprobs_from_hidden(
            hidden_BTH,
            head.weight,
            targets,
            temperature=temperature,
            chunk_size=chunk_size,
            bias_V=getattr(head, "bias", None),
            with_entropy=True,
        )
        ent = ent.detach()
    else:
        logits = model(input_ids=input_ids, attention_mask=attn, use_cache=False).logits
        logits_BTV = logits.gather(1, idx.unsqueeze(-1).expand(B, T, logits.size(-1)))
        logp = token_logprobs(logits_BTV, targets, temperature=temperature)
        with torch.no_grad():
            ent = entropy_from_logits(logits_BTV, temperature=temperature)
    logp = logp * mask
    if not with_entropy:
        return logp, mask
    return logp, mask, ent * mask

"""CPU / single-GPU engine on plain `transformers` models: a batched sampler with a KV cache, and
the teacher-forced log-prob computation the learner uses.

`HFGenerator.generate` left-pads a chunk of prompts, runs one prefill, then decodes one token per
step for every row from the KV cache. Temperature, top-k and top-p are applied to the logits; the
log-probability recorded for each sampled token is the one under that processed distribution (what
the PPO ratio compares against). Rows stop on an EOS id or when a stop string appears (the stop
string is kept in the text, so ``</answer>`` is visible to format rewards).

Qwen2 / Llama models decode through `KVDecoder` (engines/cpu/kv_decode.py: preallocated KV buffers,
fused projections, no per-step cache objects); any other model through its own forward and a
`transformers` cache. Per step, only tensor ops run over the batch: sampled ids and log-probs are
written into (B, max_new_tokens) buffers and turned into lists once at the end; stop strings (when
given) are checked with one batched decode of the live rows' last 16 tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from r1lab.engines import cpu
from r1lab.engines.cpu.kv_decode import KVDecoder, supports_kv_decode
from r1lab.engines.shared_prompt import cache_kwarg, shared_prompt_hidden
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


def sample_tokens(logp_BV: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One token per row from exp(logp), by inverse CDF: the first token whose cumulative
    probability exceeds u * total, u ~ U[0, 1) from ``gen`` (a CPU generator; one uniform per
    row, where `torch.multinomial` draws one exponential per vocabulary entry).

    A token of probability 0 is never drawn: u * total is clipped below the total, and the first
    cumulative sum above it is strictly above the one before, so that token has p > 0.
    Shapes: logp_BV (B, V) -> (B, 1) long. Raises on NaN / inf probabilities.
    """
    cdf = logp_BV.exp().cumsum(-1)
    total = cdf[:, -1:]
    if not bool(torch.isfinite(total).all()):
        raise ValueError("sampling: the next-token probabilities contain NaN or inf")
    u = torch.rand(total.shape, generator=gen, dtype=total.dtype).to(total.device) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, u, right=True)


class HFGenerator:
    """`Generator` over a `transformers` causal LM and its tokenizer."""

    def __init__(self, model, tokenizer, *, batch_size: int = 64, device: str | None = None):
        self.model = model
        cpu.enable(model)
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
        prompt_ids = tok([p for p, _, _ in rows], add_special_tokens=False)["input_ids"]
        B, P = len(rows), max(len(ids) for ids in prompt_ids)
        input_ids = torch.full((B, P), self.pad_id, dtype=torch.long)
        attn = torch.zeros((B, P), dtype=torch.long)
        for b, ids in enumerate(prompt_ids):
            input_ids[b, P - len(ids) :] = torch.tensor(ids)
            attn[b, P - len(ids) :] = 1
        input_ids, attn = input_ids.to(self.device), attn.to(self.device)
        N = sampling.max_new_tokens
        if supports_kv_decode(self.model):
            first: dict[int, int] = {}  # rows of one prompt share its prefill
            src = torch.tensor([first.setdefault(i, b) for b, (_, i, _) in enumerate(rows)])
            step = self._kv_step(attn, N, src)
        else:
            step = self._hf_step(attn)
        eos = torch.tensor(self.eos_ids, dtype=torch.long, device=self.device)
        done = torch.zeros(B, dtype=torch.bool, device=self.device)
        tokens = torch.full((B, N), self.pad_id, dtype=torch.long, device=self.device)
        logps = torch.zeros((B, N), dtype=torch.float32, device=self.device)
        lengths = torch.full((B,), N, dtype=torch.long, device=self.device)
        stopped = torch.zeros(B, dtype=torch.bool, device=self.device)
        step_ids = input_ids
        t = 0
        for t in range(N):
            logits = step(step_ids, t)
            if t < sampling.min_new_tokens and len(eos):
                logits = logits.index_fill(-1, eos, float("-inf"))
            logp = process_logits(logits, sampling)
            nxt = sample_tokens(logp, gen)
            tokens[:, t] = nxt.squeeze(-1)
            logps[:, t] = logp.gather(-1, nxt).squeeze(-1)
            hit = torch.isin(nxt.squeeze(-1), eos) if len(eos) else torch.zeros_like(done)
            if sampling.stop:
                hit = hit | self._hit_stops(tokens[:, : t + 1], done, sampling.stop)
            new = hit & ~done
            lengths = torch.where(new, t + 1, lengths)
            stopped |= new
            done |= new
            if bool(done.all()):
                break
            step_ids = nxt.masked_fill(done.unsqueeze(-1), self.pad_id)
        lengths = lengths.clamp(max=t + 1).tolist()
        token_rows, logp_rows = tokens.tolist(), logps.tolist()
        finish = ["stop" if s else "length" for s in stopped.tolist()]
        out = []
        for b, (p, i, j) in enumerate(rows):
            ids = token_rows[b][: lengths[b]]
            out.append(
                Rollout(
                    prompt_index=i,
                    sample_index=j,
                    prompt=p,
                    prompt_ids=prompt_ids[b],
                    completion_ids=ids,
                    text=self._text(ids, sampling.stop),
                    logprobs=logp_rows[b][: lengths[b]],
                    finish_reason=finish[b],  # type: ignore[arg-type]
                )
            )
        return out

    def _kv_step(self, attn_BP: torch.Tensor, max_new_tokens: int, src_B: torch.Tensor):
        """Decode with `KVDecoder` (preallocated KV buffers, fused projections, one prefill per
        distinct prompt)."""
        decoder = KVDecoder(self.model, attn_BP, max_new_tokens, src_B)
        P = attn_BP.size(1)

        def step(ids_BS: torch.Tensor, t: int) -> torch.Tensor:
            return decoder.prefill(ids_BS) if t == 0 else decoder.step(ids_BS, P + t - 1)

        return step

    def _hf_step(self, attn_BP: torch.Tensor):
        """Decode with the model's own forward and a `transformers` cache (any architecture)."""
        state = {"past": None, "attn": attn_BP, "pos": (attn_BP.cumsum(-1) - 1).clamp(min=0)}

        def step(ids_BS: torch.Tensor, t: int) -> torch.Tensor:
            if t > 0:
                ones = torch.ones_like(state["attn"][:, :1])
                state["attn"] = torch.cat([state["attn"], ones], 1)
                state["pos"] = state["pos"][:, -1:] + 1
            res = self.model(
                input_ids=ids_BS,
                attention_mask=state["attn"],
                position_ids=state["pos"],
                use_cache=True,
                **{cache_kwarg(self.model): state["past"]},
            )
            state["past"] = res.past_key_values
            return res.logits[:, -1, :]

        return step

    def _hit_stops(
        self, tokens_BT: torch.Tensor, done_B: torch.Tensor, stops: tuple[str, ...]
    ) -> torch.Tensor:
        """Rows not yet done whose last 16 tokens decode to text holding a stop string."""
        live = (~done_B).nonzero().squeeze(-1).tolist()
        hit = torch.zeros_like(done_B)
        if live:
            tails = self.tokenizer.batch_decode(
                tokens_BT[live, -16:].tolist(), skip_special_tokens=True
            )
            for b, tail in zip(live, tails):
                if any(s in tail for s in stops):
                    hit[b] = True
        return hit

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
    share_prompts: bool = True,
):
    """Teacher-forced log-probs of each completion token: (logp_BT, mask_BT[, entropy_BT]).

    Differentiable when called under grad. Positions past a row's completion are 0 in mask. For a
    plain LM head the logits are computed ``chunk_size`` tokens at a time from the hidden states
    of the completion positions only, so B x L x V logits never exist at once (memory). With
    ``share_prompts`` and a prompt that repeats (a GRPO group), each distinct prompt runs once
    (`shared_prompt_hidden`: same values and gradients, fewer FLOPs), unless gradient
    checkpointing is on.
    """
    from r1lab.algo.logprobs import entropy_from_logits, logprobs_from_hidden, token_logprobs

    device = next(model.parameters()).device
    input_ids, attn, mask, T = pack_sequences(prompt_ids, completion_ids, pad_id)
    # no row's last token predicts anything: the longest rows' final column is never an input
    if input_ids.size(1) > 1:
        input_ids, attn = input_ids[:, :-1], attn[:, :-1]
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
        checkpointing = getattr(model, "training", False) and any(
            getattr(m, "gradient_checkpointing", False) for m in model.modules()
        )
        if share_prompts and not checkpointing and len(set(map(tuple, prompt_ids))) < B:
            hidden_BTH = shared_prompt_hidden(
                decoder, prompt_ids, completion_ids, pad_id=pad_id, T=T, device=device
            )
        else:
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

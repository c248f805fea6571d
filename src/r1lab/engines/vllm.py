"""GPU rollouts with vLLM, colocated with the learner on the same GPU (extra ``[vllm]``).

`VLLMGenerator` implements the `Generator` contract of `engines.base` the way `HFGenerator` does
(prompt-major order, token ids from our own tokenizer, the stop string kept in the text, EOS ids
of the policy's generation config, seeded per sample), on top of vLLM's public offline API:

* ``LLM(..., enable_sleep_mode=True)``; the loop calls `sleep` before the learner update
  (``LLM.sleep(level)``: level 1 offloads the weights to CPU and frees the KV cache) and
  `sync_weights` after it (``LLM.wake_up(tags=["weights"])``, the policy's tensors loaded with
  the model's ``load_weights`` through ``LLM.apply_model``, then ``wake_up(tags=["kv_cache"])``
  and ``reset_prefix_cache()`` so no KV block computed with the old weights is reused).
* The engine starts from the policy's config and tokenizer with ``load_format="dummy"`` (no
  weight file is read) and gets its weights from the policy right away, so what it samples from is
  always exactly what the learner holds.
* ``logprobs_mode="processed_logprobs"`` (vLLM >= 0.10.2): the log-prob returned for each sampled
  token is the one under the distribution it was sampled from (after temperature / top-k /
  top-p), the quantity the HF engine records and the PPO ratio and the importance-sampling
  correction (`algo.is_correction`) compare with the trainer's.
* ``VLLM_ENABLE_V1_MULTIPROCESSING=0``: the engine runs in this process, so `sync_weights` hands
  it the learner's GPU tensors without serialising them.

Not exercised: this module was written against the vLLM documentation and has never run in this
project (no GPU). Not built: vLLM under torchrun (several processes) and tensor parallelism; both
fail with one line. `import r1lab` and importing this module do not import vllm.
"""

from __future__ import annotations

import importlib.util
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from r1lab.engines.hf import eos_ids_of
from r1lab.errors import R1LabError
from r1lab.types import Rollout, SamplingParams
from r1lab.utils.dist import world_size

NEEDS = "vLLM generator needs the [vllm] extra and a CUDA GPU"


def vllm_unavailable_reason() -> str | None:
    """None when vLLM can run here, else what is missing (for the error line and test skips)."""
    missing = []
    if importlib.util.find_spec("vllm") is None:
        missing.append("vllm is not installed (pip install 'r1lab[vllm]')")
    if not torch.cuda.is_available():
        missing.append("no CUDA GPU is visible")
    return "; ".join(missing) or None


def require_vllm() -> None:
    reason = vllm_unavailable_reason()
    if reason is not None:
        raise R1LabError(f"rollout.engine=vllm: {NEEDS}: {reason}")
    if world_size() > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise R1LabError(
            "rollout.engine=vllm runs in a single process; under torchrun use "
            "rollout.engine=hf (vLLM with several processes is not built)"
        )


def colocated_device() -> torch.device:
    """The GPU the engine and the learner share: the current CUDA device."""
    return torch.device("cuda", torch.cuda.current_device())


def completion_text(tokenizer, ids: Sequence[int], stops: Sequence[str]) -> str:
    """Decoded completion cut right after the first stop string (the HF engine's rule)."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    for s in stops:
        k = text.find(s)
        if k >= 0:
            text = text[: k + len(s)]
    return text


def row_seed(seed: int, row: int) -> int:
    """The seed of sample ``row`` (prompt-major index) of a seeded `generate` call."""
    return (seed * 1_000_003 + row) % 2**31


class VLLMGenerator:
    """`Generator` on a colocated vLLM engine whose weights follow the policy's.

    ``weights`` are the policy's tensors under the plain Hugging Face names (``model.state_dict()``,
    or `models.lora.merged_state_dict` for a LoRA policy); ``rollout`` is a recipe's ``rollout``
    section (`pipelines.rl_config.RolloutConfig`: memory share, context length, eager mode, sleep
    level, dtype). ``workdir`` receives the config and tokenizer the engine starts from.
    Built by `engines.generators.build_generator`.
    """

    def __init__(self, model, tokenizer, weights, rollout, *, workdir: Path, seed: int = 0):
        require_vllm()
        # engine core in this process: `apply_model` then runs our weight-loading closure
        # directly, with no (insecure) serialisation of callables or copies of GPU tensors
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        from vllm import LLM

        self.tokenizer = tokenizer
        self.eos_ids = eos_ids_of(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.sleep_level = rollout.sleep_level  # 1 or 2 (checked when the config loads)
        self.asleep = False
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        model.config.save_pretrained(workdir)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(workdir)
        tokenizer.save_pretrained(workdir)
        policy_dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        kwargs = {
            "model": str(workdir),
            "tokenizer": str(workdir),
            "load_format": "dummy",
            "dtype": policy_dtype if rollout.dtype == "auto" else rollout.dtype,
            "seed": seed,
            "gpu_memory_utilization": rollout.gpu_memory_utilization,
            "enforce_eager": rollout.enforce_eager,
            "enable_sleep_mode": True,
            "logprobs_mode": "processed_logprobs",
        }
        if rollout.max_model_len:
            kwargs["max_model_len"] = rollout.max_model_len
        self.llm = LLM(**kwargs)
        self._load(weights)

    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        if self.asleep:
            raise R1LabError("vLLM generator is asleep: call sync_weights after the update")
        from vllm import SamplingParams as VLLMSamplingParams

        prompt_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        seed = sampling.seed if sampling.seed is not None else random.randrange(2**31)
        rows = [(i, j) for i in range(len(prompts)) for j in range(n)]
        requests = [{"prompt_token_ids": prompt_ids[i]} for i, _ in rows]
        params = [
            VLLMSamplingParams(
                n=1,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k,  # 0 = all tokens
                max_tokens=sampling.max_new_tokens,
                min_tokens=sampling.min_new_tokens,
                stop=list(sampling.stop),
                stop_token_ids=list(self.eos_ids),
                include_stop_str_in_output=True,
                logprobs=0,  # the sampled token's log-prob only
                seed=row_seed(seed, b),
            )
            for b in range(len(rows))
        ]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        rollouts = []
        for (i, j), out in zip(rows, outputs, strict=True):
            comp = out.outputs[0]
            if comp.finish_reason not in ("stop", "length"):
                raise R1LabError(f"vLLM request ended with finish_reason={comp.finish_reason!r}")
            ids = [int(t) for t in comp.token_ids]
            rollouts.append(
                Rollout(
                    prompt_index=i,
                    sample_index=j,
                    prompt=prompts[i],
                    prompt_ids=list(prompt_ids[i]),
                    completion_ids=ids,
                    text=completion_text(self.tokenizer, ids, sampling.stop),
                    logprobs=[float(comp.logprobs[t][tok].logprob) for t, tok in enumerate(ids)],
                    finish_reason=comp.finish_reason,
                )
            )
        return rollouts

    def sleep(self) -> None:
        """Free the GPU for the learner update (call `sync_weights` after it)."""
        if not self.asleep:
            self.llm.sleep(level=self.sleep_level)
            self.asleep = True

    def sync_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Wake up (if asleep) with the policy's updated ``weights`` loaded."""
        if self.asleep:
            self.llm.wake_up(tags=["weights"])
        self._load(weights)
        if self.asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self.asleep = False

    def _load(self, weights: Mapping[str, torch.Tensor]) -> None:
        items = [(name, t.detach()) for name, t in weights.items()]
        loaded = self.llm.apply_model(lambda model: model.load_weights(items))
        if any(r is not None and len(r) == 0 for r in loaded):
            raise R1LabError("vLLM loaded none of the policy's weights (parameter names differ)")
        self.llm.reset_prefix_cache()

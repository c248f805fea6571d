"""The one place a `Generator` is built: `build_generator`, used by RL, rejection sampling
(``r1lab sample``, R1 stages 1 and 3, distillation), ``r1lab eval`` and held-out evaluations.

The engine is an OpenAI-compatible endpoint when ``endpoint.base_url`` is set (`EndpointConfig`:
a teacher, a served model), else ``rollout.engine`` (`pipelines.rl_config.RolloutConfig`): ``hf``
(`HFGenerator`, CPU or one GPU) or ``vllm`` (`VLLMGenerator` on the GPU, given the policy's
weights). Each engine's builder is registered in `GENERATORS` under that name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from r1lab.config import above, at_least, constrained, count
from r1lab.errors import ConfigError
from r1lab.registry import Registry

GENERATORS: Registry[Callable[..., Any]] = Registry("rollout engine")


@constrained(timeout_s=above(0), max_retries=count(0), backoff_s=at_least(0), concurrency=count())
@dataclass(frozen=True)
class EndpointConfig:
    base_url: str = ""  # e.g. http://127.0.0.1:8000/v1 ; empty = sample from a local model
    model: str = ""  # the endpoint's model name
    api_key_env: str = ""  # name of the environment variable holding the API key, if any
    system_prompt: str = ""  # chat mode only; R1 recommends none
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_s: float = 1.0
    concurrency: int = 4


def build_generator(rollout=None, *, endpoint: EndpointConfig | None = None, **kw):
    """The generator `rollout` (a `RolloutConfig`; None = ``hf``) or `endpoint` selects.

    Keywords as the engine needs them: ``model``, ``tokenizer``, ``batch_size`` (hf: rows per
    chunk), ``weights`` (vllm: the policy's tensors by HF name; default the model's state dict),
    ``workdir``, ``seed`` (vllm), ``mode`` (endpoint: chat | completions).
    """
    engine = rollout.engine if rollout is not None else "hf"
    if endpoint is not None and endpoint.base_url:
        if engine != "hf":
            raise ConfigError(f"rollout.engine={engine} and endpoint {endpoint.base_url}: set one")
        engine = "endpoint"
    return GENERATORS.get(engine)(rollout=rollout, endpoint=endpoint, **kw)


@GENERATORS.register("hf")
def _hf(*, model, tokenizer, batch_size: int = 64, **_):
    from r1lab.engines.hf import HFGenerator

    return HFGenerator(model, tokenizer, batch_size=batch_size)


@GENERATORS.register("vllm")
def _vllm(*, rollout, model, tokenizer, workdir, weights=None, seed: int = 0, **_):
    from r1lab.engines.vllm import VLLMGenerator

    weights = model.state_dict() if weights is None else weights
    return VLLMGenerator(model, tokenizer, weights, rollout, workdir=workdir, seed=seed)


@GENERATORS.register("endpoint")
def _endpoint(*, endpoint: EndpointConfig, mode: str = "chat", **_):
    from r1lab.engines.openai_compat import OpenAICompatGenerator

    api_key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
    if endpoint.api_key_env and not api_key:
        raise ConfigError(f"api_key_env names ${endpoint.api_key_env}, which is not set")
    return OpenAICompatGenerator(
        endpoint.base_url,
        endpoint.model,
        api_key=api_key,
        mode=mode,  # type: ignore[arg-type]
        system_prompt=endpoint.system_prompt or None,
        concurrency=endpoint.concurrency,
        timeout_s=endpoint.timeout_s,
        max_retries=endpoint.max_retries,
        backoff_s=endpoint.backoff_s,
    )

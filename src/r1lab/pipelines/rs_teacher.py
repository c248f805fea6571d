"""A teacher behind an OpenAI-compatible endpoint as a rejection-sampling `Generator`.

Wraps `r1lab.engines.openai_compat.OpenAICompatGenerator`: with the ``chat`` prompt template the
question goes as the user message of ``/chat/completions`` (the server applies the teacher's own
chat template); with a raw-text template (``r1_zero``, ``plain``) the rendered prompt goes to
``/completions``.
"""

from __future__ import annotations

import os

from r1lab.errors import ConfigError
from r1lab.pipelines.rs_config import TeacherConfig


def endpoint_generator(t: TeacherConfig, template: str, batch_size: int | None = None):
    from r1lab.engines.openai_compat import OpenAICompatGenerator

    api_key = None
    if t.api_key_env:
        api_key = os.environ.get(t.api_key_env)
        if not api_key:
            raise ConfigError(f"teacher.api_key_env names ${t.api_key_env}, which is not set")
    return OpenAICompatGenerator(
        t.base_url,
        t.model,
        api_key=api_key,
        mode="chat" if template == "chat" else "completions",
        system_prompt=t.system_prompt or None,
        concurrency=t.concurrency,
        timeout_s=t.timeout_s,
        max_retries=t.max_retries,
        backoff_s=t.backoff_s,
        batch_size=batch_size,
    )

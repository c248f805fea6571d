"""Prompt formats: the R1-Zero template (paper Table 1, verbatim) and the model's chat template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from r1lab.registry import Registry

# DeepSeek-R1 paper, Table 1. The PDF's line breaks are layout: single spaces here.
R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process "
    "here </think> <answer> answer here </answer>. User: {prompt}. Assistant:"
)

TemplateFn = Callable[[str, Any], str]
TEMPLATES: Registry[TemplateFn] = Registry("prompt template")


@TEMPLATES.register("r1_zero")
def r1_zero_prompt(question: str, tokenizer: Any = None) -> str:
    """The paper's template; a trailing period of the question is not doubled."""
    return R1_ZERO_TEMPLATE.format(prompt=question.strip().rstrip("."))


@TEMPLATES.register("chat")
def chat_prompt(question: str, tokenizer: Any) -> str:
    """The model's own chat template with one user turn and the generation prompt."""
    messages = [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@TEMPLATES.register("plain")
def plain_prompt(question: str, tokenizer: Any = None) -> str:
    return question


def render_prompt(template: str, question: str, tokenizer: Any = None) -> str:
    return TEMPLATES.get(template)(question, tokenizer)

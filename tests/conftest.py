"""Shared fixtures: a tiny tokenizer + random model built in-process (no hub, no cache)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the user's ~/.cache/r1lab."""
    monkeypatch.setenv("R1LAB_CACHE", str(tmp_path_factory.getbasetemp() / "r1lab-cache"))


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from r1lab.data.corpus import build_corpus
    from r1lab.models.tiny import build_tokenizer, chat_text

    docs = build_corpus(300, tasks=("arith", "countdown"), difficulty=1, seed=0, chat_fmt=chat_text)
    return build_tokenizer(docs, vocab_size=400)


@pytest.fixture()
def tiny_model(tiny_tokenizer):
    from r1lab.models.tiny import build_model

    return build_model("test", tiny_tokenizer, seed=0)

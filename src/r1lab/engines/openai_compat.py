"""A `Generator` over any OpenAI-compatible endpoint (vLLM serve, SGLang, llama.cpp server, ...).

Each (prompt, sample) pair is one HTTP request to ``{base_url}/chat/completions`` (the prompt is
the single user message; no system prompt unless given, as R1 recommends) or to
``{base_url}/completions`` (the prompt is sent as raw text). Requests run on a bounded thread pool;
a request that fails in a way that can pass (connection error, timeout, HTTP 408/409/425/429/5xx,
a malformed body) is retried with exponential backoff and jitter, honouring ``Retry-After``;
other HTTP errors (400, 401, 404, ...) fail at once with the server's message. Only the standard
library is used (urllib), so there is no extra dependency.

What an endpoint cannot give: token ids and, unless ``logprobs=True`` and the server supports
it, log-probs. `EndpointRollout` carries the server's completion-token count (``usage``) in
``num_tokens`` instead, which the evaluation runner reads. Per-request seeds are derived from
(seed, prompt, sample index), so a seeded evaluation does not depend on how prompts are chunked.
A server that returns its reasoning separately (``reasoning_content``, as vLLM's reasoning
parsers do) gets it put back as ``<think>\\n...\\n</think>\\n`` before the answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

from r1lab.errors import ConfigError, R1LabError
from r1lab.types import Rollout, SamplingParams

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(R1LabError):
    """The endpoint refused a request, or kept failing after every retry."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class EndpointRollout(Rollout):
    """A rollout from an endpoint: ``num_tokens`` is the server's completion-token count."""

    num_tokens: int = 0


def request_seed(seed: int, prompt: str, sample_index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{sample_index}:{prompt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1  # fits a signed 32-bit int


class OpenAICompatGenerator:
    """`Generator` over ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``) serving `model`.

    `timeout_s` bounds each socket wait (connecting, and each read of the response); a request
    is tried ``1 + max_retries`` times. ``batch_size`` (rows the evaluation runner sends per
    chunk) defaults to 4 x `concurrency`.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        mode: Literal["chat", "completions"] = "chat",
        system_prompt: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 600.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        logprobs: bool = False,
        extra_body: dict[str, Any] | None = None,
        batch_size: int | None = None,
    ) -> None:
        if mode not in ("chat", "completions"):
            raise ConfigError(f"mode must be 'chat' or 'completions', got {mode!r}")
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ConfigError("need concurrency >= 1, max_retries >= 0 and timeout_s > 0")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.url = base_url.rstrip("/") + (
            "/chat/completions" if mode == "chat" else "/completions"
        )
        self.model, self.api_key, self.mode = model, api_key, mode
        self.system_prompt = system_prompt
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.logprobs = logprobs
        self.extra_body = dict(extra_body or {})
        self.batch_size = batch_size or 4 * concurrency
        self.stats = {"requests": 0, "retries": 0}
        self._lock = threading.Lock()
        self._rng = random.Random(0)

    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        jobs = [(i, j, p) for i, p in enumerate(prompts) for j in range(n)]
        out: list[Rollout | None] = [None] * len(jobs)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="endpoint")
        stop = threading.Event()  # set on the first failure: the other requests stop retrying
        try:
            futures = {
                pool.submit(self._one, i, j, p, sampling, stop): idx
                for idx, (i, j, p) in enumerate(jobs)
            }
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in done:
                if fut.exception() is not None:
                    raise fut.exception()  # type: ignore[misc]
            for fut, idx in futures.items():
                out[idx] = fut.result()
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)  # no request outlives the call
        return out  # type: ignore[return-value]

    # --- one request -----------------------------------------------------------------------

    def body(self, prompt: str, sample_index: int, sampling: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_new_tokens,
            "n": 1,
        }
        if self.mode == "chat":
            system = (
                [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            )
            body["messages"] = [*system, {"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if sampling.seed is not None:
            body["seed"] = request_seed(sampling.seed, prompt, sample_index)
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.top_k:
            body["top_k"] = sampling.top_k  # vLLM / SGLang / llama.cpp extension
        if sampling.min_new_tokens:
            body["min_tokens"] = sampling.min_new_tokens
        if self.logprobs:
            body["logprobs"] = True if self.mode == "chat" else 1
        body.update(self.extra_body)
        return body

    def _one(
        self, i: int, j: int, prompt: str, sampling: SamplingParams, stop: threading.Event
    ) -> EndpointRollout:
        payload = json.dumps(self.body(prompt, j, sampling)).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt and stop.is_set():
                raise EndpointError(f"{self.url}: cancelled after another request failed")
            if attempt:
                with self._lock:
                    self.stats["retries"] += 1
            try:
                reply = self._post(payload)
                return self._rollout(i, j, prompt, reply)
            except _Retryable as exc:
                last = str(exc)
                if attempt < self.max_retries:
                    time.sleep(self._delay(attempt, exc.retry_after))
        raise EndpointError(
            f"{self.url}: request failed after {self.max_retries + 1} tries; last error: {last}"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        with self._lock:
            jitter = 0.5 + 0.5 * self._rng.random()
        return min(self.backoff_s * 2**attempt, self.max_backoff_s) * jitter

    def _post(self, payload: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        with self._lock:
            self.stats["requests"] += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _error_text(exc)
            if exc.code in RETRY_STATUS:
                raise _Retryable(f"HTTP {exc.code}: {detail}", _retry_after(exc)) from None
            raise EndpointError(f"{self.url} answered HTTP {exc.code}: {detail}") from None
        except TimeoutError:
            raise _Retryable(f"timed out after {self.timeout_s:g} s") from None
        except OSError as exc:  # URLError, refused / reset connections
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"timed out after {self.timeout_s:g} s (connecting)") from None
            raise _Retryable(f"connection failed: {reason}") from None
        try:
            reply = json.loads(raw)
            reply["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retryable(f"malformed response: {raw[:200]!r}") from None
        return reply

    def _rollout(self, i: int, j: int, prompt: str, reply: dict[str, Any]) -> EndpointRollout:
        choice = reply["choices"][0]
        if self.mode == "chat":
            msg = choice.get("message") or {}
            text = msg.get("content") or ""
            reasoning = msg.get("reasoning_content") or msg.get("reasoning")
            if reasoning:
                text = f"<think>\n{reasoning}\n</think>\n{text}"
        else:
            text = choice.get("text") or ""
        usage = reply.get("usage") or {}
        return EndpointRollout(
            prompt_index=i,
            sample_index=j,
            prompt=prompt,
            prompt_ids=[],
            completion_ids=[],
            text=text,
            logprobs=_logprobs(choice, self.mode),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            num_tokens=int(usage.get("completion_tokens") or 0),
        )


def _logprobs(choice: dict[str, Any], mode: str) -> list[float]:
    lp = choice.get("logprobs") or {}
    if mode == "chat":
        return [float(t["logprob"]) for t in lp.get("content") or []]
    return [float(x) for x in lp.get("token_logprobs") or [] if x is not None]


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read().decode(errors="replace")
    except OSError:
        return exc.reason or ""
    try:
        err = json.loads(body).get("error")
        return str(err.get("message", err)) if isinstance(err, dict) else str(err or body)
    except (ValueError, AttributeError):
        return body[:300]


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

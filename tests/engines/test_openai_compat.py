"""The OpenAI-compatible endpoint generator against a real HTTP server on loopback.

The server (http.server in a thread, 127.0.0.1 only) speaks the chat-completions and completions
protocol, and can be told to fail: HTTP 500 / 429 with Retry-After, malformed bodies, a 400 with an
error message, responses slower than the client's timeout. Every test bounds its request count.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from r1lab.engines.base import Generator
from r1lab.engines.openai_compat import EndpointError, OpenAICompatGenerator
from r1lab.types import SamplingParams


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies: list[dict] = []
        self.plan: list[str] = []  # per request, in arrival order: "ok" when exhausted
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.reply_for = lambda body: f"<answer> {len(prompt_of(body))} </answer>"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def prompt_of(body: dict) -> str:
    return body["messages"][-1]["content"] if "messages" in body else body["prompt"]


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.bodies.append(body)
            action = srv.plan.pop(0) if srv.plan else "ok"
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._answer(srv, body, action)
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def _answer(self, srv: FakeServer, body: dict, action: str):
        if action.startswith("sleep"):
            time.sleep(float(action.split(":")[1]))
        time.sleep(srv.delay)
        if action == "500":
            return self._send(500, {"error": {"message": "overloaded"}})
        if action == "429":
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if action == "400":
            return self._send(400, {"error": {"message": "max_tokens is too large"}})
        if action == "garbage":
            return self._send(200, None, raw=b"{not json")
        text = srv.reply_for(body)
        if self.path.endswith("/chat/completions"):
            msg = {"role": "assistant", "content": text}
            if action == "reasoning":
                msg["reasoning_content"] = "3 + 4 = 7"
            choice = {"index": 0, "message": msg}
            choice["logprobs"] = {"content": [{"token": "x", "logprob": -0.5}]}
        else:
            choice = {"index": 0, "text": text, "logprobs": {"token_logprobs": [-0.25, -1.0]}}
        finish = "length" if len(text) > body["max_tokens"] else "stop"
        choice["finish_reason"] = finish
        usage = {"prompt_tokens": 5, "completion_tokens": len(text.split())}
        self._send(
            200, {"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage}
        )

    def _send(self, code, obj, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client timed out
            self.wfile.write(data)


@pytest.fixture()
def server():
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


SP = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=64, seed=5)
PROMPTS = ["Compute 3 + 4", "Compute 10 - 2", "What is 6 * 7?"]


def gen_for(server, **kw):
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout_s", 5.0)
    return OpenAICompatGenerator(server.url, "tiny-model", **kw)


def test_chat_protocol_order_and_fields(server):
    gen = gen_for(server, concurrency=4)
    assert isinstance(gen, Generator)
    out = gen.generate(PROMPTS, 2, SP)
    assert [(r.prompt_index, r.sample_index) for r in out] == [
        (i, j) for i in range(3) for j in range(2)
    ]
    for r in out:
        assert r.prompt == PROMPTS[r.prompt_index]
        assert r.text == f"<answer> {len(r.prompt)} </answer>"
        assert r.num_tokens == 3 and r.finish_reason == "stop" and r.logprobs == [-0.5]
    assert len(server.bodies) == 6
    body = server.bodies[0]
    assert body["model"] == "tiny-model" and body["n"] == 1
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.6, 0.95, 64)
    assert [m["role"] for m in body["messages"]] == ["user"]  # R1: no system prompt
    assert "stop" not in body and "top_k" not in body
    seeds = {(prompt_of(b), b["seed"]) for b in server.bodies}
    assert len({s for _, s in seeds}) == 6  # one distinct seed per (prompt, sample)
    # seeds do not depend on batching: the same prompt alone gets the same two seeds
    server.bodies.clear()
    gen.generate(PROMPTS[1:2], 2, SP)
    assert {(prompt_of(b), b["seed"]) for b in server.bodies} <= seeds


def test_length_finish_stop_strings_and_completions_mode(server):
    gen = gen_for(server, mode="completions", system_prompt=None)
    sp = SamplingParams(max_new_tokens=5, stop=("</answer>",), top_k=20)
    out = gen.generate(["Compute 1 + 1"], 1, sp)
    body = server.bodies[0]
    assert body["prompt"] == "Compute 1 + 1" and body["stop"] == ["</answer>"]
    assert body["top_k"] == 20 and "seed" not in body
    assert out[0].finish_reason == "length" and out[0].logprobs == [-0.25, -1.0]
    assert server.bodies and "/completions" in gen.url and "chat" not in gen.url


def test_reasoning_content_is_put_back_in_think_tags(server):
    server.plan = ["reasoning"]
    out = gen_for(server, system_prompt="be brief").generate(["Compute 3 + 4"], 1, SP)
    assert out[0].text == "<think>\n3 + 4 = 7\n</think>\n<answer> 13 </answer>"
    assert [m["role"] for m in server.bodies[0]["messages"]] == ["system", "user"]


def test_bounded_concurrency(server):
    server.delay = 0.15
    gen = gen_for(server, concurrency=3)
    t0 = time.time()
    out = gen.generate(["a", "b", "c", "d"], 3, SP)
    assert len(out) == 12
    # never more than 3 at once, and really concurrent (3 in flight at once is the usual case;
    # on a loaded machine the third request can arrive after the first has been answered)
    assert 2 <= server.max_in_flight <= 3
    assert time.time() - t0 >= 4 * 0.15 - 0.05  # 12 requests, 3 at a time: at least 4 rounds


def test_retries_with_backoff_on_server_errors(server):
    server.plan = ["500", "429", "garbage", "500"]
    gen = gen_for(server, concurrency=1, max_retries=5)
    out = gen.generate(["Compute 3 + 4"], 1, SP)
    assert out[0].text == "<answer> 13 </answer>"
    assert gen.stats == {"requests": 5, "retries": 4}


def test_gives_up_after_max_retries(server):
    server.plan = ["500"] * 10
    gen = gen_for(server, concurrency=1, max_retries=2)
    with pytest.raises(EndpointError, match="after 3 tries; last error: HTTP 500: overloaded"):
        gen.generate(["x"], 1, SP)
    assert len(server.bodies) == 3


def test_client_errors_are_not_retried(server):
    server.plan = ["400"]
    gen = gen_for(server, concurrency=1, max_retries=5)
    with pytest.raises(EndpointError, match="HTTP 400: max_tokens is too large"):
        gen.generate(["x"], 1, SP)
    assert len(server.bodies) == 1


def test_timeout_then_retry_and_slow_but_in_time(server):
    server.plan = ["sleep:1.0"]  # first request slower than the timeout
    gen = gen_for(server, concurrency=1, timeout_s=0.3, max_retries=2)
    out = gen.generate(["Compute 3 + 4"], 1, SP)
    assert out[0].text == "<answer> 13 </answer>" and gen.stats["retries"] == 1
    server.plan = ["sleep:0.15"]  # slow, but within the timeout: no retry
    gen = gen_for(server, concurrency=1, timeout_s=1.0, max_retries=2)
    gen.generate(["Compute 3 + 4"], 1, SP)
    assert gen.stats == {"requests": 1, "retries": 0}
    server.plan = ["sleep:0.6"] * 2
    gen = gen_for(server, concurrency=1, timeout_s=0.2, max_retries=1)
    with pytest.raises(EndpointError, match="timed out after 0.2 s"):
        gen.generate(["x"], 1, SP)


def test_unreachable_server_fails_clearly():
    import socket

    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = OpenAICompatGenerator(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff_s=0.01)
    with pytest.raises(EndpointError, match="connection failed"):
        gen.generate(["x"], 1, SP)


def test_bad_configuration():
    with pytest.raises(Exception, match="http"):
        OpenAICompatGenerator("localhost:8000", "m")
    with pytest.raises(Exception, match="mode"):
        OpenAICompatGenerator("http://127.0.0.1:1/v1", "m", mode="embeddings")


def test_interrupted_evaluation_resumes_without_repeating(server, tmp_path):
    """The runner + endpoint: a failure mid-run leaves finished chunks on disk; resume skips them."""
    from r1lab.eval.runner import evaluate
    from r1lab.types import Example

    exs = [
        Example(
            id=f"q{i}",
            question=f"Compute {i} + {i}",
            answer=str(len(f"Compute {i} + {i}")),
            verifier="number",
        )
        for i in range(4)
    ]
    prompts = [ex.question for ex in exs]
    out = tmp_path / "endpoint.jsonl"
    kw = dict(
        prompts=prompts,
        k=2,
        sampling=SP,
        out_path=out,
        chunk_size=1,
        progress=False,
        format_reward=None,
    )
    server.plan = ["ok"] * 4 + ["400"]  # problems 0 and 1 finish, problem 2 is refused
    with pytest.raises(EndpointError):
        evaluate(gen_for(server, concurrency=1), exs, **kw)
    # 4 ok + the refused one (+ at most the other sample of problem 2, already in flight)
    assert len(server.bodies) in (5, 6)
    server.bodies.clear()
    res = evaluate(gen_for(server, concurrency=2), exs, resume=True, **kw)
    assert sorted(prompt_of(b) for b in server.bodies) == sorted(prompts[2:] * 2)
    assert res.metrics["pass@1"] == 1.0 and res.metrics["resumed_problems"] == 2
    assert res.metrics["mean_response_tokens"] == 3.0


def test_run_eval_with_an_endpoint_backend(server, tmp_path):
    from r1lab.eval.benchmarks import MATH_INSTRUCTION
    from r1lab.eval.run import EvalRunConfig, run_eval
    from r1lab.utils.jsonl import JsonlWriter

    with JsonlWriter(tmp_path / "set.jsonl", "w") as w:
        w.write({"id": "a", "q": "Compute 3 + 4", "a": "7", "verifier": "number"})
    server.reply_for = lambda body: "3 + 4 = 7, so \\boxed{7}"
    cfg = EvalRunConfig(
        endpoint=server.url,
        endpoint_model="served-model",
        source=str(tmp_path / "set.jsonl"),
        question_key="q",
        answer_key="a",
        k=3,
        max_new_tokens=100,
        output_dir=str(tmp_path),
        run_name="ep",
        progress=False,
    )
    out = run_eval(cfg, log=lambda *a: None)
    m = out["results"]["custom"].metrics
    assert m["pass@1"] == 1.0 and m["cons@3"] == 1.0 and m["mean_response_tokens"] == 7.0
    body = server.bodies[0]
    assert body["model"] == "served-model" and body["max_tokens"] == 100
    assert body["messages"] == [{"role": "user", "content": "Compute 3 + 4\n" + MATH_INSTRUCTION}]
    assert (tmp_path / "ep" / "report.md").exists()

"""Rejection sampling from a teacher behind a real OpenAI-compatible HTTP server on loopback:
chat and completions modes, provenance, transient errors (retried), slow replies, hard errors."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from r1lab.config import load_config
from r1lab.data.tasks import generate_mix
from r1lab.engines.openai_compat import EndpointError
from r1lab.pipelines import rejection_sampling
from r1lab.pipelines.rs_config import RSConfig
from r1lab.utils.jsonl import read_jsonl


def solve(text: str) -> int:
    """The teacher: evaluates the 'Compute a + b - c' question inside a prompt."""
    expr = text.split("Compute ", 1)[1].split(".")[0].split("<")[0].strip()
    return eval(expr, {"__builtins__": {}})  # noqa: S307 - digits and + - from our task generator


class Teacher(BaseHTTPRequestHandler):
    requests: list[dict] = []
    fail_every = 0  # every n-th request answers 503 once (transient)
    slow_s = 0.0
    lock = threading.Lock()

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        try:
            self.end_headers()
            self.wfile.write(body)
        except BrokenPipeError:  # the client timed out and left (the timeout test)
            pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Teacher.lock:
            Teacher.requests.append(req)
            n = len(Teacher.requests)
        if req["model"] != "teacher-1":
            return self._send(404, {"error": {"message": f"model {req['model']} not found"}})
        if Teacher.fail_every and n % Teacher.fail_every == 0:
            return self._send(503, {"error": {"message": "busy"}}, {"Retry-After": "0"})
        time.sleep(Teacher.slow_s)
        prompt = req["messages"][-1]["content"] if "messages" in req else req["prompt"]
        value = solve(prompt) + (req["seed"] % 3 == 0)  # one sample in three is wrong
        usage = {"completion_tokens": 9}
        if self.path.endswith("/chat/completions"):
            msg = {"content": f"The answer is \\boxed{{{value}}}.", "reasoning_content": "I add."}
            choice = {"message": msg, "finish_reason": "stop"}
        else:
            choice = {
                "text": f" <think> I add. </think> <answer> {value} </answer>",
                "finish_reason": "stop",
            }
        return self._send(200, {"choices": [choice], "usage": usage})


@pytest.fixture()
def server():
    Teacher.requests, Teacher.fail_every, Teacher.slow_s = [], 0, 0.0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Teacher)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def config(url: str, *extra: str) -> RSConfig:
    return load_config(
        RSConfig,
        None,
        [
            f"teacher.base_url={url}",
            "teacher.model=teacher-1",
            "teacher.backoff_s=0.01",
            "teacher.timeout_s=5",
            "data.tasks=[arith]",
            "data.n_train=6",
            "k=3",
            "prompts_per_chunk=4",
            "max_per_prompt=3",
            "filters=[{name: truncated}]",
            "progress=false",
            *extra,
        ],
    )


def test_chat_teacher_dataset_and_provenance(server, tmp_path):
    res = rejection_sampling.run(config(server, "data.template=chat"), run_dir=tmp_path)
    rows = read_jsonl(res.dataset)
    # the teacher's correct samples of one prompt are identical: dedupe keeps one per prompt
    assert 0 < len(rows) <= 6 and len({r["id"] for r in rows}) == len(rows)
    assert res.stats["incorrect"] + res.stats["duplicate"] + len(rows) == 18
    for row in rows:
        assert row["messages"][0] == {"role": "user", "content": row["question"]}
        assert row["completion"].startswith("<think>\nI add.\n</think>\n")
        assert row["completion"].endswith(f"\\boxed{{{row['answer']}}}.")
        prov = row["provenance"]
        assert prov["model"] == "teacher-1" and prov["endpoint"] == server
        assert prov["num_tokens"] == 9 and prov["rewards"] == {"accuracy": 1.0}
    # the endpoint got the bare question as the user message (it applies its own template)
    assert all(
        r["messages"] == [{"role": "user", "content": r["messages"][0]["content"]}]
        for r in Teacher.requests
    )
    questions = [ex.question for ex in generate_mix(("arith",), 6, split="train")]
    assert sorted(r["messages"][0]["content"] for r in Teacher.requests) == sorted(questions * 3)


def test_completions_teacher_with_transient_errors_and_slow_replies(server, tmp_path):
    clean = rejection_sampling.run(config(server, "data.template=r1_zero"), run_dir=tmp_path / "a")
    Teacher.requests, Teacher.fail_every, Teacher.slow_s = [], 4, 0.05
    flaky = rejection_sampling.run(config(server, "data.template=r1_zero"), run_dir=tmp_path / "b")
    assert len(Teacher.requests) > 18  # 503s were retried
    assert read_jsonl(clean.dataset) == read_jsonl(flaky.dataset)  # same data despite retries
    assert "prompt" in Teacher.requests[0] and Teacher.requests[0]["prompt"].startswith("A conv")
    assert clean.sft_prompt_format == "raw" and clean.rows > 0


def test_hard_error_surfaces_with_the_server_message(server, tmp_path):
    with pytest.raises(EndpointError, match="HTTP 404: model nope not found"):
        rejection_sampling.run(
            config(server, "teacher.model=nope", "data.template=chat"), run_dir=tmp_path
        )


def test_timeout_is_retried_then_reported(server, tmp_path):
    Teacher.slow_s = 1.0
    cfg = config(
        server,
        "data.template=chat",
        "teacher.timeout_s=0.2",
        "teacher.max_retries=1",
        "data.n_train=1",
        "k=1",
    )
    with pytest.raises(EndpointError, match="failed after 2 tries.*timed out"):
        rejection_sampling.run(cfg, run_dir=tmp_path)

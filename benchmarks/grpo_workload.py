"""The GRPO CPU reference workload (``docs/grpo_cpu_workload.md``), shared by both sides.

Imports only torch, transformers and tokenizers, so that the TRL baseline (``trl_grpo_cpu.py``,
run in ``benchmarks/.venv-trl`` where r1lab is not installed) and r1lab's driver
(``r1lab_grpo_cpu.py``) build exactly the same tokenizer, model, prompts, rewards and figures.

What lives here: the character tokenizer (section 1), the random Qwen2/Llama model (section 2),
prompts and the two rewards (section 3), the CLI flags every implementation accepts, the step
timer and the JSON figures (section 6), and the workload's FLOP count for the roofline. What does
not: any training logic; each side's own script does the step its own way.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

CONFIGS = {  # named configurations: section "Two named configurations"
    "small": {"hidden_size": 128, "num_layers": 4, "max_completion_length": 32},
    "large": {"hidden_size": 256, "num_layers": 6, "max_completion_length": 64},
}
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
PROMPT_LEN = 6


# ---- CLI (the doc's flags) -------------------------------------------------------------------


def add_workload_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    ap.add_argument("--arch", choices=("qwen2", "llama"), default="qwen2")
    ap.add_argument("--hidden-size", type=int, default=None)
    ap.add_argument("--num-layers", type=int, default=None)
    ap.add_argument("--num-heads", type=int, default=4)
    ap.add_argument("--num-kv-heads", type=int, default=None)
    ap.add_argument("--intermediate-size", type=int, default=None)
    ap.add_argument("--max-completion-length", type=int, default=None)
    ap.add_argument("--tie-word-embeddings", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--prompts-per-step", type=int, default=8)
    ap.add_argument("--num-generations", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--fixed-length", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="keep files here (init_model/ is reused)")
    ap.add_argument("--phases", action="store_true", help="also time each phase (phase_timer.py)")


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the named configuration's values into the flags left unset."""
    named = CONFIGS[args.config]
    for key, value in named.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.intermediate_size is None:
        args.intermediate_size = 4 * args.hidden_size
    if args.num_kv_heads is None:
        args.num_kv_heads = args.num_heads
    return args


# ---- tokenizer, model, prompts, rewards ------------------------------------------------------


def char_vocab() -> dict[str, int]:
    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for c in range(0x20, 0x7F):
        vocab[chr(c)] = 3 + c - 32
    return vocab


def build_tokenizer():
    """Character-level `PreTrainedTokenizerFast`: 98 ids, left padding, no BOS, nothing appended."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=char_vocab(), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )
    fast.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    return fast


def load_tokenizer(model_dir: Path):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(model_dir / "tokenizer.json"),
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",
    )


def build_model(args: argparse.Namespace):
    """The random float32 Qwen2 (or Llama) model of section 2, after ``torch.manual_seed(seed)``."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = dict(
        vocab_size=98,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_layers,
        num_attention_heads=args.num_heads,
        num_key_value_heads=args.num_kv_heads,
        intermediate_size=args.intermediate_size,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        tie_word_embeddings=args.tie_word_embeddings,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        attention_dropout=0.0,
    )
    torch.manual_seed(args.seed)
    if args.arch == "qwen2":
        cfg = Qwen2Config(**common, use_sliding_window=False)
        model = Qwen2ForCausalLM(cfg)
    else:
        cfg = LlamaConfig(**common, attention_bias=False, mlp_bias=False)
        model = LlamaForCausalLM(cfg)
    return model.float()


def init_model_dir(args: argparse.Namespace, workdir: Path) -> Path:
    """``workdir/init_model`` (config.json, model.safetensors, tokenizer.json), built once."""
    out = workdir / "init_model"
    if not (out / "model.safetensors").exists():
        model = build_model(args)
        model.generation_config.pad_token_id = 0
        model.generation_config.eos_token_id = 1
        model.save_pretrained(out)
        build_tokenizer().save_pretrained(out)
    return out


def prompt(i: int) -> tuple[str, str]:
    a, b = 10 + (37 * i) % 90, 10 + (53 * i + 11) % 90
    return f"{a}+{b}=", str(a + b)


def prompts_for_run(args: argparse.Namespace) -> list[tuple[str, str]]:
    return [prompt(i) for i in range(args.prompts_per_step * (args.warmup_steps + args.steps))]


def reward_correct(completion: str, answer: str) -> float:
    return 1.0 if completion.startswith(answer) else 0.0


def reward_digit_first(completion: str) -> float:
    return 1.0 if completion[:1] != "" and completion[0] in "0123456789" else 0.0


def total_reward(completion: str, answer: str) -> float:
    return reward_correct(completion, answer) + reward_digit_first(completion)


# ---- FLOPs (for the roofline) ----------------------------------------------------------------


def flops_per_step(args: argparse.Namespace) -> float:
    """Matmul FLOPs of one step: generation (prefill + L decode steps with a KV cache), the
    reference forward, the policy forward and backward (2x the forward). Attention scores and
    values are counted; elementwise work (norms, softmax, AdamW) is not.

    A linear layer costs 2 * in * out FLOPs per token forward; the backward costs twice that.
    """
    H, mlp, n = args.hidden_size, args.intermediate_size, args.num_layers
    hd = H // args.num_heads
    kv = args.num_kv_heads * hd
    V = 98
    B = args.prompts_per_step * args.num_generations
    P, L = PROMPT_LEN, args.max_completion_length
    per_tok_layer = 2 * (H * H + 2 * H * kv + H * H + 3 * H * mlp)  # q, k, v, o, gate/up/down

    def attn(q_len: int, ctx: int) -> float:  # QK^T and PV for q_len queries over ctx keys
        return 2 * 2 * q_len * ctx * H

    # generation: prefill P tokens, then L - 1 decode steps (the last token is sampled, not fed)
    gen_tokens = P + (L - 1)
    gen = B * (gen_tokens * n * per_tok_layer + n * attn(P, P) / 2)
    gen += B * n * sum(attn(1, P + t) for t in range(1, L))
    gen += B * L * 2 * H * V  # LM head at the positions that sample
    seq = P + L
    fwd = B * (seq * n * per_tok_layer + n * attn(seq, seq) / 2 + L * 2 * H * V)
    return float(gen + fwd + 3 * fwd)  # ref forward + policy forward + backward (2x)


def gemm_rates(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Measured float32 n x n x n GEMM rates (FLOP/s, best of ``repeats``) of the two kernels a
    PyTorch CPU wheel carries: ``torch.matmul`` (MKL on x86) and oneDNN
    (``torch.ops.mkldnn._linear_pointwise``, when present). On AMD CPUs MKL runs AVX2 code and
    oneDNN AVX-512, so the two differ about 2x; the machine's roofline is the faster one.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    kernels = {"torch_matmul": lambda: torch.matmul(a, b)}
    mkldnn = getattr(torch.ops, "mkldnn", None)
    if getattr(mkldnn, "_linear_pointwise", None) is not None:
        bt = b.t().contiguous()
        kernels["onednn"] = lambda: torch.ops.mkldnn._linear_pointwise(a, bt, None, "none", [], "")
    rates = {}
    for name, fn in kernels.items():
        fn()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        rates[name] = 2 * n**3 / best
    return rates


# ---- timing and the JSON figures -------------------------------------------------------------


def _proc_stat() -> tuple[float, float]:
    """(busy jiffies of all CPUs, steal jiffies) from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = f[:8]
    return float(user + nice + system + irq + softirq), float(steal)


class StepClock:
    """Step ends (``step_end``), generation-call and rollout time, CPU use and RSS, per section 6."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup = warmup_steps
        self.ends: list[float] = [time.perf_counter()]
        self.generate_s: list[float] = []
        self.rollout_s: list[float] = []
        self.cpu_ends: list[float] = [time.process_time()]
        self.stat_ends: list[tuple[float, float]] = [_proc_stat()]
        self.rss_before_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def step_end(self) -> None:
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())
        self.stat_ends.append(_proc_stat())

    def step_times(self) -> list[float]:
        return [b - a for a, b in zip(self.ends, self.ends[1:])]

    def figures(self, gen_tokens_per_step: int) -> dict:
        w = self.warmup
        steps = self.step_times()
        timed = steps[w:]
        cpu = [b - a for a, b in zip(self.cpu_ends, self.cpu_ends[1:])][w:]
        wall = self.ends[-1] - self.ends[w]
        tick = os.sysconf("SC_CLK_TCK")
        busy = (self.stat_ends[-1][0] - self.stat_ends[w][0]) / tick
        steal = (self.stat_ends[-1][1] - self.stat_ends[w][1]) / tick
        own = self.cpu_ends[-1] - self.cpu_ends[w]
        gen_timed = self.generate_s[w:]
        roll = self.rollout_s[w:]
        tokens = gen_tokens_per_step * len(timed)
        return {
            "step_s_median": statistics.median(timed),
            "step_s_mean": statistics.mean(timed),
            "step_s_min": min(timed),
            "step_s_max": max(timed),
            "step_s_all": steps,
            "gen_tokens_per_s": tokens / sum(timed),
            "gen_only_tokens_per_s": tokens / sum(gen_timed) if gen_timed else None,
            "generate_s_median": statistics.median(gen_timed) if gen_timed else None,
            "rollout_s_median": statistics.median(roll) if roll else None,
            "train_s_median": statistics.median([s - r for s, r in zip(timed, roll)])
            if roll
            else None,
            "peak_rss_mib_before_training": self.rss_before_mib,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpu_s_per_step_median": statistics.median(cpu),
            "own_cores_used": own / wall,
            "other_procs_cores": max(0.0, busy - own) / wall,
            "steal_cores": steal / wall,
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
        }


def print_figures(figures: dict) -> None:
    print(json.dumps(figures))


def main(run, description: str) -> None:
    """The command line both sides share: workload flags, threads, a workdir (kept when given,
    else a temporary one), then ``run(args, workdir)``'s figures as one JSON line."""
    ap = argparse.ArgumentParser(description=description)
    add_workload_args(ap)
    args = resolve(ap.parse_args())
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.workdir:
        print_figures(run(args, Path(args.workdir)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print_figures(run(args, Path(tmp)))

"""GRPO end to end on tiny in-process models: learning happens, runs are reproducible, and
`r1lab rl` runs on a model directory saved by plain transformers with its own tokenizer."""

from __future__ import annotations

import json

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from r1lab.cli import main
from r1lab.config import load_config
from r1lab.pipelines import grpo
from r1lab.pipelines.rl_config import RLConfig
from r1lab.rewards import REWARDS, RewardResult

if "digit_share" not in REWARDS:

    @REWARDS.register("digit_share")
    def digit_share(c, **_):
        """Share of completion characters that are digits: an easy, dense test signal."""
        text = c.text.strip()
        return RewardResult(sum(ch.isdigit() for ch in text) / max(1, len(text)))


def cfg_for(tmp_path, *extra):
    return load_config(
        RLConfig,
        "r1_zero_tiny",
        [
            f"output_dir={tmp_path}",
            "run_name=t",
            "progress=false",
            "data.template=plain",
            "data.n_train=64",
            "grpo.prompts_per_step=4",
            "grpo.group_size=8",
            "sampling.max_new_tokens=12",
            "sampling.stop=[]",
            "rewards=[{name: digit_share}]",
            *extra,
        ],
    )


def test_a_few_steps_raise_the_reward_and_change_parameters(tmp_path, tiny_model, tiny_tokenizer):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    cfg = cfg_for(tmp_path, "grpo.steps=12", "grpo.lr=0.02", "grpo.beta=0.0")
    res = grpo.run(cfg, model=tiny_model, tokenizer=tiny_tokenizer, log=lambda *_: None)
    rewards = [m["reward"] for m in res.metrics]
    assert sum(rewards[-3:]) / 3 > sum(rewards[:3]) / 3 + 0.1, rewards
    changed = [k for k, v in tiny_model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2
    rows = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    for key in (
        "reward/digit_share",
        "clip_frac",
        "entropy",
        "grad_norm",
        "truncation_rate",
        "time/generate",
        "time/update",
        "tokens_per_second",
    ):
        assert key in rows[0]
    assert (res.checkpoint / "model.safetensors").exists()


def test_same_seed_same_first_step(tmp_path, tiny_tokenizer):
    from r1lab.models.tiny import build_model

    runs = []
    for i in range(2):
        model = build_model("test", tiny_tokenizer, seed=0)
        cfg = cfg_for(tmp_path / str(i), "grpo.steps=1", "grpo.beta=0.04")
        res = grpo.run(cfg, model=model, tokenizer=tiny_tokenizer, log=lambda *_: None)
        samples = (res.run_dir / "samples.jsonl").read_text()
        runs.append((res.metrics[0]["loss"], samples, model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert runs[0][1] == runs[1][1]
    assert all(torch.equal(runs[0][2][k], runs[1][2][k]) for k in runs[0][2])
    other = build_model("test", tiny_tokenizer, seed=0)
    res = grpo.run(
        cfg_for(tmp_path / "x", "grpo.steps=1", "seed=1"),
        model=other,
        tokenizer=tiny_tokenizer,
        log=lambda *_: None,
    )
    assert (res.run_dir / "samples.jsonl").read_text() != runs[0][1]


def test_rl_cli_on_a_plain_transformers_directory(tmp_path, tiny_tokenizer):
    """A random Qwen2 saved by plain transformers, with its own tokenizer and chat template."""
    model_dir = tmp_path / "plain"
    tok = char_tokenizer()
    tok.save_pretrained(model_dir)
    plain_qwen2(tok).save_pretrained(model_dir)
    code = main(
        [
            "rl",
            "r1_zero_tiny",
            f"model.path={model_dir}",
            f"output_dir={tmp_path}",
            "run_name=cli",
            "grpo.steps=2",
            "grpo.prompts_per_step=2",
            "grpo.mini_batches=2",
            "grpo.group_size=4",
            "data.n_train=8",
            "data.template=chat",
            "sampling.max_new_tokens=8",
            "progress=false",
        ]
    )
    assert code == 0
    samples = [json.loads(x) for x in (tmp_path / "cli" / "samples.jsonl").read_text().splitlines()]
    assert samples and len((tmp_path / "cli" / "metrics.jsonl").read_text().splitlines()) == 2
    cfg_text = (tmp_path / "cli" / "config.yaml").read_text()
    assert str(model_dir) in cfg_text
    assert samples[0]["question"].startswith("Compute")


def plain_qwen2(tok, layers: int = 1):
    """A random plain-transformers Qwen2 (GQA: 2 heads, 1 KV head) sized to ``tok``."""
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return Qwen2ForCausalLM(cfg)


def char_tokenizer():
    """A character-level tokenizer with its own chat template (not r1lab's)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {
        t: i for i, t in enumerate(["<pad>", "<eos>", "<unk>"] + [chr(c) for c in range(32, 127)])
    }
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
    )
    tok.chat_template = (
        "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    return tok


def test_periodic_heldout_evaluation_lands_in_the_metrics(tmp_path, tiny_model, tiny_tokenizer):
    cfg = cfg_for(
        tmp_path, "grpo.steps=4", "eval.every=2", "eval.k=2", "eval.max_new_tokens=6",
        "data.n_test=3", "grpo.beta=0.0",
    )  # fmt: skip
    res = grpo.run(cfg, model=tiny_model, tokenizer=tiny_tokenizer, log=lambda *_: None)
    rows = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [("heldout_pass@1" in r) for r in rows] == [False, True, False, True]
    for r in rows[1::2]:
        assert 0.0 <= r["heldout_pass@1"] <= 1.0 and 0.0 <= r["heldout_format_rate"] <= 1.0
        assert "heldout_cons@2" in r
    for step in (2, 4):
        lines = (res.run_dir / "heldout" / f"step-{step:06d}.jsonl").read_text().splitlines()
        assert len(lines) == 3 * 2  # every held-out problem x k samples

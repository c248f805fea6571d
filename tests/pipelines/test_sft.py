"""SFT pipeline: it learns, evaluates held-out loss, checkpoints, resumes exactly, skips a
finished run, and runs from the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from r1lab.cli import main
from r1lab.data.general_chat import general_sft_rows
from r1lab.errors import ConfigError
from r1lab.models.tiny import build_model
from r1lab.pipelines import sft
from r1lab.pipelines.rl_config import LoraSettings
from r1lab.pipelines.sft_config import SFTConfig, SFTDataConfig, SFTTrainConfig


@pytest.fixture()
def data_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in general_sft_rows(40)))
    return path


def config(data_file, **train) -> SFTConfig:
    t = {"epochs": 2, "batch_tokens": 400, "lr": 5e-3, "save_every": 3, **train}
    return SFTConfig(
        progress=False,
        data=SFTDataConfig(train_file=str(data_file), eval_fraction=0.1),
        train=SFTTrainConfig(**t),
    )


def params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_sft_learns_and_writes_a_checkpoint(tmp_path, data_file, tiny_tokenizer):
    torch.set_num_threads(1)
    model = build_model("test", tiny_tokenizer, seed=0)
    res = sft.run(
        config(data_file), run_dir=tmp_path / "run", model=model, tokenizer=tiny_tokenizer
    )
    first, last = res.metrics[0]["eval_loss"], res.eval_loss
    assert last < first - 0.3, (first, last)
    assert res.data["eval_samples"] == 4 and res.data["samples"] == 36
    losses = [r["loss"] for r in res.metrics if "loss" in r]
    assert len(losses) == res.steps and sum(losses[-3:]) < sum(losses[:3])
    lrs = [r["lr"] for r in res.metrics if "lr" in r]
    assert lrs[-1] < max(lrs)  # the cosine schedule decays
    state = json.loads((res.checkpoint / "r1lab_state.json").read_text())
    assert state == {"stage": "sft", "step": res.steps, "complete": True}
    assert not (tmp_path / "run" / "checkpoints").exists()  # resumable checkpoints cleaned up
    from transformers import AutoModelForCausalLM

    again = AutoModelForCausalLM.from_pretrained(res.checkpoint)
    assert torch.equal(params(again), params(model))


def test_resume_after_a_crash_gives_the_same_weights(
    tmp_path, data_file, tiny_tokenizer, monkeypatch
):
    torch.set_num_threads(1)
    full = build_model("test", tiny_tokenizer, seed=0)
    sft.run(config(data_file), run_dir=tmp_path / "full", model=full, tokenizer=tiny_tokenizer)

    calls = {"n": 0}
    real = sft.nll_loss

    def crash_on_step_8(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt  # killed during step 8, after the step-6 checkpoint
        return real(*a, **kw)

    monkeypatch.setattr(sft, "nll_loss", crash_on_step_8)
    crashed = build_model("test", tiny_tokenizer, seed=0)
    with pytest.raises(KeyboardInterrupt):
        sft.run(
            config(data_file), run_dir=tmp_path / "resumed", model=crashed, tokenizer=tiny_tokenizer
        )
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == [
        "latest",
        "step-000006",
    ]
    monkeypatch.setattr(sft, "nll_loss", real)
    fresh = build_model(
        "test", tiny_tokenizer, seed=1
    )  # different init: weights come from the ckpt
    res = sft.run(
        config(data_file), run_dir=tmp_path / "resumed", model=fresh, tokenizer=tiny_tokenizer
    )
    assert torch.allclose(params(fresh), params(full), atol=1e-6)
    assert [r["step"] for r in res.metrics] == list(range(res.steps + 1))

    # a finished run is not trained again
    other = build_model("test", tiny_tokenizer, seed=2)
    before = params(other)
    again = sft.run(
        config(data_file), run_dir=tmp_path / "resumed", model=other, tokenizer=tiny_tokenizer
    )
    assert torch.equal(params(other), before) and again.eval_loss == res.eval_loss


def test_config_errors(tmp_path, data_file, tiny_tokenizer):
    model = build_model("test", tiny_tokenizer, seed=0)
    with pytest.raises(ConfigError, match="train_file is required"):
        sft.run(
            SFTConfig(progress=False), run_dir=tmp_path / "a", model=model, tokenizer=tiny_tokenizer
        )
    with pytest.raises(ConfigError, match="schedule"):
        sft.run(
            config(data_file, schedule="zigzag"),
            run_dir=tmp_path / "b",
            model=model,
            tokenizer=tiny_tokenizer,
        )


def test_cli_sft(tmp_path, data_file, tiny_tokenizer, capsys):
    torch.set_num_threads(1)
    mdir = tmp_path / "model"
    build_model("test", tiny_tokenizer, seed=0).save_pretrained(mdir)
    tiny_tokenizer.save_pretrained(mdir)
    rc = main(
        [
            "sft",
            f"model.path={mdir}",
            f"data.train_file={data_file}",
            "train.max_steps=2",
            f"output_dir={tmp_path}",
            "run_name=cli",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert "2 steps" in capsys.readouterr().out
    assert (tmp_path / "cli" / "checkpoint" / "model.safetensors").exists()
    assert (
        main(
            [
                "sft",
                f"model.path={mdir}",
                "data.train_file=/nope.jsonl",
                f"output_dir={tmp_path}",
                "--no-progress",
            ]
        )
        == 2
    )


def test_sft_with_lora_changes_only_adapter_weights(tmp_path, data_file, tiny_tokenizer):
    pytest.importorskip("peft")
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    model = build_model("test", tiny_tokenizer, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = replace(config(data_file, max_steps=3), lora=replace(LoraSettings(), enabled=True, r=4))
    res = sft.run(cfg, run_dir=tmp_path / "lora", model=model, tokenizer=tiny_tokenizer)
    after = model.state_dict()  # the adapter-injected model: base_layer weights + lora_A/B
    adapters = {k: v for k, v in after.items() if ".lora_" in k}
    base = {k.replace(".base_layer.", "."): v for k, v in after.items() if ".lora_" not in k}
    assert adapters and base.keys() == before.keys()
    assert all(torch.equal(base[k], before[k]) for k in before)  # every base weight unchanged
    assert any(
        k.endswith("lora_B.default.weight") and v.abs().sum() > 0 for k, v in adapters.items()
    )
    merged = load_file(res.checkpoint / "model.safetensors")  # adapters folded in, plain names
    assert merged.keys() <= before.keys()
    assert any(not torch.equal(merged[k], before[k]) for k in merged)
    assert (res.checkpoint / "adapter" / "adapter_config.json").exists()

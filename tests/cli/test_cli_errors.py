"""Bad input gets one clear line on stderr and exit code 2, never a traceback."""

import json

import pytest

from r1lab import cli
from r1lab.cli import main


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["rl", "r1_zero_tiny", "grpo.bogus=1"], "unknown config key 'grpo.bogus'"),
        (["rl", "r1_zero_tiny", "grpo.steps=abc"], "grpo.steps: expected an integer"),
        (["rl", "missing_recipe.yaml"], "recipe file not found"),
        (["rl", "r1_zero_tiny", "model.path=/no/such/model"], "/no/such/model"),
        (
            ["rl", "r1_zero_tiny", "rewards=[{name: nosuch}]"],
            "rewards[0].name: expected a registered reward (",
        ),
    ],
)
def test_one_line_errors(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_malformed_data_row(tmp_path, capsys, tiny_model, tiny_tokenizer):
    model_dir = tmp_path / "model"
    tiny_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    bad = tmp_path / "train.jsonl"
    good = {"question": "Compute 1 + 1", "answer": "2", "verifier": "number"}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({"question": "Compute 2 + 2"}) + "\n")
    capsys.readouterr()
    argv = ["rl", "r1_zero_tiny", f"data.train_file={bad}", f"model.path={model_dir}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"{bad}:2: missing 'answer'" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_overrides_without_a_recipe_keep_the_commands_default_recipe():
    from r1lab.commands._common import split_recipe

    parser = cli.build_parser()
    assert split_recipe(parser.parse_args(["demo", "threads=1", "seed=2"])) == (
        "r1_zero_tiny",
        ["threads=1", "seed=2"],
    )
    assert split_recipe(parser.parse_args(["demo", "dapo_tiny", "seed=2"])) == (
        "dapo_tiny",
        ["seed=2"],
    )
    assert split_recipe(parser.parse_args(["eval", "k=3"])) == (None, ["k=3"])  # no default

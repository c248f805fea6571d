import json

from r1lab.cli import main


def test_eval_and_report_commands(tmp_path, tiny_model, tiny_tokenizer, capsys):
    model_dir = tmp_path / "m"
    tiny_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    src = tmp_path / "probs.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({"id": f"p{i}", "question": f"Compute {i} + 1", "answer": str(i + 1)})
            for i in range(3)
        )
    )
    argv = [
        "eval",
        f"model={model_dir}",
        f"source={src}",
        "verifier=number",
        "template=r1_zero",
        "k=2",
        "max_new_tokens=8",
        f"output_dir={tmp_path}",
        "run_name=ev",
        "progress=false",
    ]
    assert main(argv) == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert "report" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "ev")]) == 0
    table = capsys.readouterr().out
    assert "pass@1" in table and "| ev" in table
    assert report  # readable JSON
    assert main(["eval", "k=2"]) == 2  # nothing to evaluate: one clear error

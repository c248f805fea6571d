from r1lab.data.corpus import build_corpus
from r1lab.data.tasks import generate, generate_mix, split_of
from r1lab.data.templates import R1_ZERO_TEMPLATE, render_prompt
from r1lab.models.tiny import chat_text
from r1lab.rewards import Completion
from r1lab.rewards.synthetic import verify_countdown, verify_number

PAPER_TABLE_1 = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think> <answer> answer here </answer>. User: prompt. Assistant:"
)


def test_r1_zero_template_is_the_papers():
    assert R1_ZERO_TEMPLATE.format(prompt="prompt") == PAPER_TABLE_1
    text = render_prompt("r1_zero", "Compute 1 + 2")
    assert text.endswith("User: Compute 1 + 2. Assistant:")


def test_generation_is_deterministic_and_splits_are_disjoint():
    for task in ("arith", "countdown"):
        a = generate(task, 200, split="train", seed=3, difficulty=1)
        b = generate(task, 200, split="train", seed=3, difficulty=1)
        assert [e.question for e in a] == [e.question for e in b]
        test = generate(task, 50, split="test", seed=3, difficulty=1)
        assert not {e.question for e in a} & {e.question for e in test}
        assert all(split_of(e.question) == "test" for e in test)
        assert len({e.question for e in a}) == 200


def test_rows_carry_answer_and_a_verifier_that_accepts_the_worked_solution():
    for ex in generate_mix(("arith", "countdown"), 40, split="train", seed=1, difficulty=2):
        row = ex.as_row()
        assert row["answer"] and row["verifier"] in ("number", "countdown")
        final = ex.meta["solution"] if ex.task == "countdown" else ex.answer
        text = f"<think> {' '.join(ex.meta['steps'])} </think> <answer> {final} </answer>"
        check = verify_countdown if ex.task == "countdown" else verify_number
        assert check(Completion(text, row)).score == 1.0, (ex, text)
        assert check(Completion("<answer> 123456 </answer>", row)).score == 0.0


def test_difficulty_knob_adds_steps():
    easy = generate("arith", 20, split="train", seed=0, difficulty=0)
    hard = generate("arith", 20, split="train", seed=0, difficulty=3)
    assert all(len(e.meta["steps"]) == 1 for e in easy)
    assert all(len(e.meta["steps"]) == 4 for e in hard)


def test_corpus_uses_tags_only_in_a_minority_and_never_test_problems():
    docs = build_corpus(2000, tasks=("arith",), difficulty=1, seed=0, chat_fmt=chat_text)
    tagged = sum("<answer>" in d.split("Assistant:")[-1] for d in docs)
    assert 0.02 < tagged / len(docs) < 0.3
    test_q = {e.question for e in generate("arith", 30, split="test", seed=0, difficulty=1)}
    assert not any(q in d for d in docs for q in test_q if f"{q}." in d or f"{q}?" in d)

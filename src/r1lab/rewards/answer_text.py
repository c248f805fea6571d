r"""Rewrites applied to a text before math-verify extracts from it (pure regex, no sympy).

Each rule fixes a reading math-verify 0.9 gets wrong on real outputs; none decides equivalence.

| rule                 | before                        | after                   |
|----------------------|-------------------------------|-------------------------|
| punctuation in math  | ``$\frac{1}{3}.$``, ``\[x,\]`` | ``$\frac{1}{3}$``       |
| mixed numbers        | ``4 4/9``, ``-4 4/9%``         | ``(4+4/9)``, ``-(4+4/9)/100`` |
| digits beside CJK    | ``比例为13/28``                 | ``比例为 13/28``          |
| answer words         | ``Réponse :``, ``答案：``        | ``Answer:``             |

Punctuation: one ``.`` ``,`` or ``;`` (spaces around it allowed) right before a closing ``$``,
``\]`` or ``\)`` is sentence punctuation, not math; an ellipsis (``1, 2, 3, ...``) is kept.
A period right after a closing parenthesis ends the sentence (``is (4+4/9).``).
Mixed numbers: a whole number, one space, then a proper fraction ``p/q`` (``0 <= p < q``), not
inside a longer run of numbers or fractions (``11/10 4/9``, ``11.0 4/9``, ``(11) 4/9`` and a
line break are not mixed numbers); an improper one (``11 7/6``) is left as written.
"""

from __future__ import annotations

import re

_MATH_PUNCT = re.compile(r"([^.\s])\s*[.,;]\s*(?=\$|\\\]|\\\))")
_PAREN_PERIOD = re.compile(r"(?<=\))\.(?=\s|$)")
_MIXED = re.compile(
    r"(?<![\w.,/)\]}])([+-]?)(\d{1,3}(?: \d{3})+|\d+) (\d+)/(\d+)(?![\d/.,]\d)"
    r"(\s*(?:%|percentage|percent|pct)(?![A-Za-z]))?"
)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_DIGIT = re.compile(rf"(?<=[{_CJK}])(?=[-+$\d])|(?<=\d)(?=[{_CJK}])")
_ANSWER_WORDS = re.compile(
    r"(?:\b(?:Réponse|réponse|Respuesta|respuesta|Antwort|antwort|Risposta|risposta|Resposta"
    r"|resposta|Ответ|ответ)\b|答案|解答|الإجابة|الجواب|उत्तर)\s*[:：]\s*",
)


def _mixed(m: re.Match) -> str:
    sign, whole, num, den, percent = m.groups()
    if int(den) == 0 or int(num) >= int(den):
        return m.group(0)
    value = f"({whole.replace(' ', '')}+{num}/{den})"
    value = f"-{value}" if sign == "-" else value
    return f"{value}/100" if percent else value


def rewrite_mixed_numbers(text: str) -> str:
    return _MIXED.sub(_mixed, text)


def prepare_text(text: str) -> str:
    """The text math-verify should read (module doc)."""
    text = _MATH_PUNCT.sub(r"\1", text)
    text = _ANSWER_WORDS.sub("Answer: ", text)
    text = _CJK_DIGIT.sub(" ", text)
    return _PAREN_PERIOD.sub("", rewrite_mixed_numbers(text))

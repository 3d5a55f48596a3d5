import pytest

from der.answers import parse_answer, reference_answer

# Outputs seen from small instruct models on the BoolQ prompts, and what each parser makes of them.
CASES = [
    ("Yes", "yes", "yes"),
    ("No", "no", "no"),
    ("no.", "no", "no"),
    (" Yes.\n", "yes", "yes"),
    ("**Yes**", "yes", "no"),  # the reference's splitter keeps the asterisks: no word matches
    ("YES", "yes", "yes"),
    ("No, the passage says otherwise.", "no", "no"),
    ("yes\n\nThis is the answer to the given question from another model.", "yes", "yes"),
    ("Answer: no", "no", "no"),
    ("The answer is yes, there is no doubt.", "yes", "no"),
    ("Based on the passage, no.", "no", "no"),
    ("yes or no", "yes", "no"),
    ("I cannot determine that.", "unknown", "no"),
    ("", "unknown", "no"),
    (None, "unknown", "no"),
    ("Yesterday it rained", "unknown", "yes"),  # whole words only; the reference matches a prefix
    ("Nobody knows", "unknown", "no"),
    ("The passage says so: yes", "yes", "yes"),
    ("true", "unknown", "no"),
]


@pytest.mark.parametrize(("text", "ours", "ref"), CASES)
def test_parser_table(text, ours, ref):
    assert parse_answer(text) == ours
    assert reference_answer(text) == ref


def test_mixed_words_without_an_answer_slot_are_unknown():
    assert parse_answer("Some say yes, some say no") == "unknown"

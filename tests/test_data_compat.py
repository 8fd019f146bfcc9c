"""Tokenizers saved before the tokenizers read text in NFC everywhere and kept combining marks inside words (commits
9671864, 43fdbb3) read back and encode as they did when saved: a checkpoint's model learned those ids.

Each saved state and its ids below were made by the code of commit 7c3a809 (its minitransformer/data/tokenizers.py:
``to_dict()`` and ``encode``/``decode`` of the texts), pasted here so that the tests need no git.
"""

import pytest

from minitransformer import nn
from minitransformer.data import SPECIAL_TOKENS, BPETokenizer, CharTokenizer, WordTokenizer, tokenizer_from_dict
from minitransformer.train.checkpoint import read_checkpoint, save_checkpoint

pytestmark = pytest.mark.single_backend

SPECIALS = list(SPECIAL_TOKENS)

# WordTokenizer.from_texts(["मैं घर जा रहा हूँ।", "वह घर जा रही है", "كِتَابٌ جَمِيلٌ", "İstanbul güzel", "H\u0331ello"]):
# each combining mark a token of its own
OLD_WORD = {"type": "word", "specials": SPECIALS, "lower": True, "vocab": [
    "\u093e", "\u064c", "\u064e", "\u0650", "\u0918\u0930", "\u091c", "\u0930\u0939", "\u0939", "\u0948", "ello",
    "g\xfczel", "h", "i", "stanbul", "\u0307", "\u0331", "\u0627\u0628", "\u062a", "\u062c", "\u0643", "\u0645",
    "\u064a\u0644", "\u0901", "\u0902", "\u092e", "\u0935\u0939", "\u0940", "\u0942", "\u0964"]}
OLD_WORD_IDS = [  # (text, ids, decoded)
    ("\u092e\u0948\u0902 \u0918\u0930 \u091c\u093e \u0930\u0939\u093e \u0939\u0942\u0901\u0964",
     [28, 12, 27, 8, 9, 4, 10, 4, 11, 31, 26, 32],
     "\u092e \u0948 \u0902 \u0918\u0930 \u091c \u093e \u0930\u0939 \u093e \u0939 \u0942 \u0901 \u0964"),
    ("\u0935\u0939 \u0918\u0930 \u091c\u093e \u0930\u0939\u0940 \u0939\u0948", [29, 8, 9, 4, 10, 30, 11, 12],
     "\u0935\u0939 \u0918\u0930 \u091c \u093e \u0930\u0939 \u0940 \u0939 \u0948"),
    ("\u0643\u0650\u062a\u064e\u0627\u0628\u064c \u062c\u064e\u0645\u0650\u064a\u0644\u064c",
     [23, 7, 21, 6, 20, 5, 22, 6, 24, 7, 25, 5],
     "\u0643 \u0650 \u062a \u064e \u0627\u0628 \u064c \u062c \u064e \u0645 \u0650 \u064a\u0644 \u064c"),
    ("\u0130stanbul g\xfczel", [16, 18, 17, 14], "i \u0307 stanbul g\xfczel"),
    ("H\u0331ello", [15, 19, 13], "h \u0331 ello"),  # lower-cased "h\u0331" was not composed again ("ẖ")
    ("h\u0331", [3], "<unk>"),  # but typed so it was: "ẖ", one piece, unknown
]
# WordTokenizer(["Cafe\u0301", "café"]): an entry not in NFC beside its composed twin
OLD_WORD_TWINS = {"type": "word", "specials": SPECIALS, "vocab": ["cafe\u0301", "caf\xe9"], "lower": True}


@pytest.mark.parametrize("state, cases", [
    (OLD_WORD, OLD_WORD_IDS),
    (OLD_WORD_TWINS, [("caf\xe9", [5], "caf\xe9"), ("cafe\u0301", [5], "caf\xe9")]),
], ids=["marks-apart", "nfd-twin"])
def test_a_word_tokenizer_saved_before_reads_with_the_rule_it_was_made_with(state, cases):
    """A word tokenizer saved before held each combining mark as a piece ("म", "ै", "ं"); read with today's rule
    ("मैं" one word) a Hindi sentence was [3, 8, 3, 3, 3, 32], not [28, 12, 27, ...], and "İstanbul güzel" [3, 14]; a
    vocabulary holding "cafe\u0301" beside "café" was refused as listing one entry twice."""
    for tok in (tokenizer_from_dict(state), WordTokenizer.from_dict(state)):
        assert tok.itos[4:] == state["vocab"]
        for text, ids, decoded in cases:
            assert tok.encode(text) == ids, text
            # (the danda is glued to its word as a full stop is, since 43fdbb3: the same ids)
            assert tok.decode(ids) == decoded.replace(" \u0964", "\u0964")
        assert not tok.marks_in_words
        again = tokenizer_from_dict(tok.to_dict())  # saved again, it keeps its rule
        assert again == tok and again.to_dict()["marks_in_words"] is False


def test_a_word_tokenizer_made_today_saves_its_rule():
    tok = WordTokenizer.from_texts(["\u092e\u0948\u0902 \u0918\u0930"])
    state = tok.to_dict()
    assert state["marks_in_words"] is True and tokenizer_from_dict(state).tokenize("\u092e\u0948\u0902") == [
        "\u092e\u0948\u0902"]
    with pytest.raises(ValueError, match=r"^tokenizer_from_dict: a 'word' tokenizer's 'marks_in_words' must be true "
                                         r"or false, got 'no'"):
        tokenizer_from_dict({**state, "marks_in_words": "no"})


# CharTokenizer(["a", "\u0958", "\u0915", "b"]): U+0958 DEVANAGARI LETTER QA, which NFC writes as "\u0915\u093c"
OLD_CHAR_QA = {"type": "char", "specials": SPECIALS, "vocab": ["a", "\u0958", "\u0915", "b"]}
# CharTokenizer(["\u2126", "\u03a9", "x"]): U+2126 OHM SIGN beside U+03A9 GREEK CAPITAL LETTER OMEGA, its NFC
OLD_CHAR_OHM = {"type": "char", "specials": SPECIALS, "vocab": ["\u2126", "\u03a9", "x"]}
# BPETokenizer(["\u2126", "\u03a9", "x", "e", "\u0301", " "], [("\u2126", "x"), ("\u03a9", "x"), ("e", "\u0301")])
OLD_BPE_OHM = {"type": "bpe", "specials": SPECIALS,
               "vocab": ["\u2126", "\u03a9", "x", "e", "\u0301", " ", "\u2126x", "\u03a9x", "e\u0301"],
               "merges": [["\u2126", "x"], ["\u03a9", "x"], ["e", "\u0301"]]}
# BPETokenizer(["c", "a", "f", "e", "\u0301", " "], [("e", "\u0301"), ("c", "a")]): a merge that spells no NFC text
OLD_BPE_NFD = {"type": "bpe", "specials": SPECIALS, "vocab": ["c", "a", "f", "e", "\u0301", " ", "e\u0301", "ca"],
               "merges": [["e", "\u0301"], ["c", "a"]]}


@pytest.mark.parametrize("cls, state, cases", [
    (CharTokenizer, OLD_CHAR_QA, [("a\u0958\u0915b", [4, 6, 3, 6, 7], "a\u0915<unk>\u0915b")]),
    (CharTokenizer, OLD_CHAR_OHM, [("\u2126x\u03a9", [5, 6, 5], "\u03a9x\u03a9")]),
    (BPETokenizer, OLD_BPE_OHM, [("\u2126x \u03a9x e\u0301", [11, 9, 11, 9, 3], "\u03a9x \u03a9x <unk>")]),
    (BPETokenizer, OLD_BPE_NFD, [("cafe\u0301", [11, 6, 3], "caf<unk>"), ("caf\xe9 ca", [11, 6, 3, 9, 11],
                                                                          "caf<unk> ca")]),
], ids=["char-qa", "char-ohm", "bpe-ohm", "bpe-nfd-merge"])
def test_a_saved_vocabulary_is_read_back_verbatim(cls, state, cases):
    """from_dict composed the saved entries as the constructors compose a user's: "\u0958" became "\u0915" and
    "\u093c" (every later id moved: [4, 5, 6, 5, 7]); "\u2126" beside "\u03a9" was refused as listed twice, and a
    merge spelling "e\u0301" as not NFC. Their positions are the ids a model learned: they are kept as saved, and an
    entry not in NFC is never read, as before (text is composed as it enters)."""
    for tok in (tokenizer_from_dict(state), cls.from_dict(state)):
        assert type(tok) is cls and tok.itos[4:] == state["vocab"] and tok.to_dict() == state
        for text, ids, decoded in cases:
            assert tok.encode(text) == ids and tok.decode(ids) == decoded, text


def test_a_checkpoint_saved_before_gives_its_tokenizer_back_as_saved(tmp_path):
    """A checkpoint holds the tokenizer's data; its readers rebuild it with tokenizer_from_dict."""
    path = save_checkpoint(tmp_path / "old.npz", nn.Linear(2, 2), tokenizer=OLD_WORD)
    tok = tokenizer_from_dict(read_checkpoint(path).tokenizer)
    assert [tok.encode(text) for text, _, _ in OLD_WORD_IDS] == [ids for _, ids, _ in OLD_WORD_IDS]


class _Loud(CharTokenizer):  # a class of one's own whose __init__ hands its vocabulary on to CharTokenizer's
    kind = "test-compat-loud"

    def __init__(self, alphabet, loud=True):
        super().__init__(alphabet)
        self.loud = loud


def test_a_subclass_that_hands_its_vocabulary_on_reads_it_back_verbatim_too():
    tok = tokenizer_from_dict({**OLD_CHAR_OHM, "type": "test-compat-loud"})
    assert type(tok) is _Loud and tok.itos[4:] == OLD_CHAR_OHM["vocab"] and tok.encode("\u2126x\u03a9") == [5, 6, 5]


def test_a_checkpoint_saved_before_is_still_the_tokenizer_its_task_rebuilds():
    """evaluate and --resume rebuild the task and compare its tokenizer's data with the checkpoint's: a word
    tokenizer saved before has no "marks_in_words", so every dates, translate and classify checkpoint of before was
    refused ("the dates task's data no longer give the tokenizer it saved (another order)"). Without a combining mark
    in its vocabulary both rules cut its texts alike; with marks the vocabularies differ: refused, as it was."""
    from minitransformer.data import TokenizerPair
    from minitransformer.train.run import _same_tokenizer

    now = TokenizerPair(WordTokenizer.from_texts(["march 3, 2021"]), CharTokenizer("-0123456789")).to_dict()
    before = {**now, "source": {k: v for k, v in now["source"].items() if k != "marks_in_words"}}
    assert _same_tokenizer(before, now) and _same_tokenizer(now, now)
    hindi_now = WordTokenizer.from_texts(["\u092e\u0948\u0902 \u0918\u0930"]).to_dict()
    hindi_before = {k: v for k, v in hindi_now.items() if k != "marks_in_words"}  # (a vocabulary with marks)
    assert not _same_tokenizer(hindi_before, hindi_now) and not _same_tokenizer(OLD_WORD, hindi_now)
    assert not _same_tokenizer({**before, "source": {**before["source"], "lower": False}}, now)

"""Byte-pair encoding: the merges learned, the pieces applied, what round-trips, saving and bad input."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minitransformer.data import (
    SPECIAL_TOKENS,
    UNK,
    BPETokenizer,
    CharTokenizer,
    load_corpus,
    tokenizer_from_dict,
)

SENNRICH = "low lower lowest newer wider"


def test_the_merges_of_sennrichs_example_worked_by_hand():
    """The chunks "low", " lower", " lowest", " newer", " wider", once each. Pairs: ("e", "r"), ("l", "o"), ("o", "w")
    and ("w", "e") occur 3 times; "e" comes first. Then ("l", "o") and ("o", "w") 3 times: "lo"; ("lo", "w") 3 times:
    "low"; (" ", "low") twice, every other pair once: " low". Then no pair occurs twice, and training stops."""
    tok = BPETokenizer.from_text(SENNRICH, vocab_size=100)
    assert tok.merges == [("e", "r"), ("l", "o"), ("lo", "w"), (" ", "low")]
    alphabet = [" ", "d", "e", "i", "l", "n", "o", "r", "s", "t", "w"]
    assert tok.itos[4:] == alphabet + ["er", "lo", "low", " low"]
    assert tok.vocab_size == 4 + 11 + 4  # fewer than asked: it stopped
    # vocab_size stops it earlier, after two merges
    assert BPETokenizer.from_text(SENNRICH, vocab_size=4 + 11 + 2).merges == [("e", "r"), ("l", "o")]
    # the learned merges, applied by rank, cut the training text as training left it
    assert tok.tokenize(SENNRICH) == ["low", " low", "er", " low", "e", "s", "t",
                                      " ", "n", "e", "w", "er", " ", "w", "i", "d", "er"]


def test_merges_apply_by_rank_not_left_to_right():
    """In "abc", ("b", "c") was learned before ("a", "b"): it wins although ("a", "b") comes first in the word."""
    tok = BPETokenizer("abc", [("b", "c"), ("a", "b")])
    assert tok.tokenize("abc") == ["a", "bc"]
    assert BPETokenizer("abc", [("a", "b"), ("b", "c")]).tokenize("abc") == ["ab", "c"]


def test_ties_go_to_the_pair_first_in_string_order():
    # chunks "ab", " ab", " ba", " ba": (" ", "b"), ("a", "b") and ("b", "a") occur twice each; " " < "a" < "b", so
    # (" ", "b") wins, not ("a", "b"), the pair seen first
    assert BPETokenizer.from_text("ab ab ba ba", vocab_size=4 + 3 + 1).merges == [(" ", "b")]
    # chunks "ba", " ba", " ab", " ab": (" ", "a"), ("a", "b") and ("b", "a") twice each
    assert BPETokenizer.from_text("ba ba ab ab", vocab_size=4 + 3 + 1).merges == [(" ", "a")]


def test_training_is_deterministic_and_order_free_over_lines():
    text = load_corpus("tiny")
    lines = text.splitlines(keepends=True)
    shuffled = "".join(lines[1::2] + lines[::2])  # the same lines (the same chunks, counted alike), in another order
    assert text.endswith("\n")
    first = BPETokenizer.from_text(text, 300)
    assert BPETokenizer.from_text(text, 300) == first
    assert BPETokenizer.from_text(shuffled, 300) == first


def test_the_shipped_corpus_round_trips_and_is_shorter_in_tokens():
    text = load_corpus("tiny")
    tok = BPETokenizer.from_text(text, 512)
    ids = tok.encode(text)
    assert tok.vocab_size == 512
    assert tok.decode(ids) == text
    assert UNK not in ids
    assert len(ids) < len(CharTokenizer.from_text(text).encode(text))
    assert any(piece.startswith(" ") and len(piece) > 2 for piece in tok.itos)  # words with their leading space


def _recounted_merges(text, vocab_size):
    """Sennrich et al.'s loop as their paper prints it, written apart from the library: every pair of every chunk is
    counted again before each merge; a chunk is its symbols joined by "\x00", and a merge is a regular-expression
    substitution of "a\x00b" between separators."""
    words = Counter("\x00" + "\x00".join(chunk) + "\x00" for chunk in re.findall(r" ?\S+|\s", text))
    vocab, merges = set(text), []
    while len(SPECIAL_TOKENS) + len(vocab) < vocab_size:
        pairs = Counter()
        for word, n in words.items():
            symbols = word.strip("\x00").split("\x00")
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += n
        ranked = sorted((-n, pair) for pair, n in pairs.items() if pair[0] + pair[1] not in SPECIAL_TOKENS)
        if not ranked or -ranked[0][0] < 2:
            break
        (a, b) = best = ranked[0][1]
        bigram = re.compile(r"(?<=\x00)" + re.escape(a + "\x00" + b) + r"(?=\x00)")
        words = Counter({bigram.sub(a + b, word): n for word, n in words.items()})
        merges.append(best)
        vocab.add(a + b)
    return merges


def _random_text(seed):
    """Words of a few letters (runs like "aaaa" whose pairs overlap, pieces that spell "<eos>"), spaces, line breaks."""
    rng = random.Random(seed)
    words = ["".join(rng.choice(["a", "b", "c", "aa", "<eos>", "<", ">"]) for _ in range(rng.randint(1, 4)))
             for _ in range(40)]
    return "".join(rng.choice(words) + rng.choice([" ", " ", "\n", "  "]) for _ in range(rng.randint(50, 400)))


@pytest.mark.single_backend
@pytest.mark.parametrize("seed", range(6))
def test_the_incremental_counts_give_the_merges_of_recounting_every_pair(seed):
    """from_text updates the pair counts of the chunks a merge changes; a plain recount must give the same merges."""
    text = _random_text(seed)
    for vocab_size in (15, 40, 200):
        assert BPETokenizer.from_text(text, vocab_size).merges == _recounted_merges(text, vocab_size), vocab_size


@pytest.mark.single_backend
def test_the_shipped_corpus_s_merges_are_those_of_recounting_every_pair():
    text = load_corpus("tiny")
    assert BPETokenizer.from_text(text, 300).merges == _recounted_merges(text, 300)


@pytest.mark.parametrize("text", ["a  b", "a\n\nb\n", "\ta b \n", " a", "a ", "  ", "\n"])
def test_every_run_of_whitespace_round_trips(text):
    tok = BPETokenizer.from_text("a b a b\n\ta  b ", vocab_size=20)
    assert tok.decode(tok.encode(text)) == text


# characters that spell "<pad>", "<bos>" and "<eos>" too, and texts drawn as pieces that often do
ALPHABET = "<>abdeops \n\t"
_TEXTS = st.lists(st.sampled_from(["<pad>", "<eos>", "<bos>", *ALPHABET]), max_size=30).map("".join)


@settings(max_examples=60, deadline=None)
@given(_TEXTS, _TEXTS, st.integers(4 + len(ALPHABET), 60))
def test_any_text_of_known_characters_round_trips(train, text, vocab_size):
    tok = BPETokenizer.from_text(train, vocab_size, alphabet=ALPHABET)
    assert tok.decode(tok.encode(text)) == text
    assert "".join(tok.tokenize(text)) == text and all(piece in tok.stoi for piece in tok.tokenize(text))
    assert tok.tokenize(text) == _replayed(tok.merges, text)


def _replayed(merges, text):
    """Each merge in the order learned, applied everywhere in each chunk: what applying the lowest rank first gives
    (a merge's pieces are older than it, so joining a pair never makes a pair of lower rank)."""
    pieces = []
    for chunk in re.findall(r" ?\S+|\s", text):
        symbols = list(chunk)
        for a, b in merges:
            k = 0
            while k < len(symbols) - 1:
                if symbols[k] == a and symbols[k + 1] == b:
                    symbols[k:k + 2] = [a + b]
                k += 1
        pieces += symbols
    return pieces


@pytest.mark.parametrize("special", ["<pad>", "<eos>"])
def test_a_special_token_in_the_text_is_never_merged_into_the_special(special):
    """A text's "<pad>" was merged into the piece "<pad>", which took the id of <pad>: it read as padding and was lost.
    The merge that would spell it is skipped for the next most frequent; the text stays ordinary pieces."""
    text = f"{special}\n" * 5 + "ab\n" * 3  # chunks: the special 5 times, "ab" 3 times, "\n" 8 times
    *spelled, end = special
    tok = BPETokenizer.from_text(text, vocab_size=30, alphabet=" ")
    # ("<", "p"), ("<p", "a"), ("<pa", "d") (5 times each; "<" comes first in string order); ("<pad", ">") skipped
    assert tok.merges == [("".join(spelled[:k]), spelled[k]) for k in range(1, len(spelled))] + [("a", "b")]
    assert not set(tok.itos[4:]) & set(SPECIAL_TOKENS)
    for line in (text, f"{special}\nab", f"ab {special} ab\n", f"b{special}{special}"):  # at a line's start, mid-line
        ids = tok.encode(line)
        assert min(ids) >= len(SPECIAL_TOKENS), (line, ids)  # no id of a special
        assert tok.decode(ids) == line
        assert "".join(tok.tokenize(line)) == line


def test_a_merge_that_spells_a_special_token_is_refused():
    merges = [("<", "e"), ("<e", "o"), ("<eo", "s"), ("<eos", ">")]
    with pytest.raises(ValueError, match=r"BPETokenizer: merge 3 is \('<eos', '>'\), which spells the special token "
                                         r"'<eos>'; a text's '<eos>' would read as the special"):
        BPETokenizer("<>eos", merges)
    state = BPETokenizer("<>eos", merges[:3]).to_dict()
    state["merges"].append(["<eos", ">"])
    state["vocab"].append("<eos>")
    with pytest.raises(ValueError, match="spells the special token '<eos>'"):
        tokenizer_from_dict(state)  # a hand-made saved file


def test_whitespace_other_than_one_leading_space_is_never_merged():
    tok = BPETokenizer.from_text("a\n\n\nb\n\n\n  c  c", vocab_size=30)
    assert not any(len(piece) > 1 and piece.strip() == "" for piece in tok.itos[4:])  # no "\n\n", no "  "
    assert tok.tokenize("a\n\n  c") == ["a", "\n", "\n", " ", " c"]


def test_an_unknown_character_is_one_unk():
    tok = BPETokenizer.from_text(SENNRICH, vocab_size=100)
    assert tok.tokenize("lowxer") == ["low", "x", "er"]  # merges never reach over it
    assert tok.encode("lowxer") == [tok.stoi["low"], UNK, tok.stoi["er"]]
    assert tok.decode(tok.encode("lowxer")) == "low<unk>er"


def test_alphabet_adds_characters_the_text_lacks():
    tok = BPETokenizer.from_text("aaa", vocab_size=7, alphabet="xa")
    assert tok.itos[4:] == ["a", "x", "aa"]
    assert UNK not in tok.encode("xa")


def test_to_dict_round_trips_through_json():
    tok = BPETokenizer.from_text(load_corpus("tiny"), 300)
    state = json.loads(json.dumps(tok.to_dict()))
    assert state["type"] == "bpe" and state["merges"][0] == list(tok.merges[0])
    again = tokenizer_from_dict(state)
    assert isinstance(again, BPETokenizer) and again == tok
    assert again.merges == tok.merges and again.itos == tok.itos
    assert BPETokenizer.from_dict(state) == tok
    assert tok != BPETokenizer.from_text(load_corpus("tiny"), 299)
    assert tok != CharTokenizer(tok.itos[4:4 + 60])


def test_a_merged_string_made_twice_keeps_one_id():
    tok = BPETokenizer("abc", [("a", "b"), ("ab", "c"), ("b", "c"), ("a", "bc")])  # "abc" twice
    assert tok.itos[4:] == ["a", "b", "c", "ab", "abc", "bc"]
    assert tokenizer_from_dict(tok.to_dict()) == tok


def test_vocab_size_below_the_alphabet_is_refused():
    with pytest.raises(ValueError, match=r"BPETokenizer.from_text: vocab_size=14 is smaller than the 4 special tokens "
                                         r"and the text's 11 characters \(15\)"):
        BPETokenizer.from_text(SENNRICH, vocab_size=14)
    assert BPETokenizer.from_text(SENNRICH, vocab_size=15).merges == []  # the alphabet alone
    for bad in (2.5, True, "512", 7.0):  # not a size at all: said so, not "smaller than" (7.0 was)
        with pytest.raises(TypeError, match=rf"^BPETokenizer.from_text: vocab_size must be an integer, got {bad!r}$"):
            BPETokenizer.from_text("ab ab" if bad == 7.0 else SENNRICH, vocab_size=bad)
    with pytest.raises(TypeError, match="BPETokenizer.from_text: text and alphabet must be str"):
        BPETokenizer.from_text(["low"], vocab_size=20)


def test_a_merge_of_pieces_not_yet_known_is_refused():
    with pytest.raises(ValueError, match=r"BPETokenizer: merge 1 is \('ab', 'cd'\); a merge is a pair of pieces "
                                         r"already in the vocabulary"):
        BPETokenizer("abcd", [("a", "b"), ("ab", "cd")])
    with pytest.raises(ValueError, match="single characters"):
        BPETokenizer(["ab"])


def test_damaged_saved_data_is_refused():
    state = BPETokenizer.from_text(SENNRICH, vocab_size=100).to_dict()
    with pytest.raises(ValueError, match=r"'merges' must be a list of \[left, right\] pairs"):
        tokenizer_from_dict({**state, "merges": None})
    with pytest.raises(ValueError, match="is not its alphabet followed by its merges"):
        tokenizer_from_dict({**state, "vocab": state["vocab"][:-1]})  # a merge without its entry
    swapped = state["vocab"][:-2] + state["vocab"][-1:] + state["vocab"][-2:-1]
    with pytest.raises(ValueError, match="is not its alphabet followed by its merges"):
        tokenizer_from_dict({**state, "vocab": swapped})  # ids that would read other pieces

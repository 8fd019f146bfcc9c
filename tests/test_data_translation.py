"""The sentence pairs of the encoder-decoder: the dates task's generator, the reader of source<TAB>target files, the
tokenizer pair, and the two tasks built from them."""

from __future__ import annotations

import datetime
import re

import numpy as np
import pytest

from minitransformer.data import (
    DATE_FORMATS,
    FIRST_DATE,
    LAST_DATE,
    CharTokenizer,
    CorpusError,
    TokenizerPair,
    WordTokenizer,
    dates_task_splits,
    format_date,
    read_pairs,
    split_pairs,
    tokenizer_from_dict,
)
from minitransformer.train import tasks

from references import PAIRS

pytestmark = pytest.mark.single_backend

# ------------------------------------------------------------------ an independent parser of the dates' formats
# Written from the formats' description, not from the generator's code: strptime reads the numbers and the English
# month and weekday names (case aside); the ordinals and the day in words are turned into numbers first.
_ONES = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"]
_WORDS = {**{w: i + 1 for i, w in enumerate(_ONES)}, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
          "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
          "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
          **{f"twenty-{w}": 21 + i for i, w in enumerate(_ONES)}, **{f"thirty-{w}": 31 + i for i, w in
                                                                     enumerate(_ONES)}}
_STRPTIME = ["%d %B %Y", "%d %b %y", "%B %d, %Y", "%B %d %Y", "the %d of %B %Y", "the %d of %B, %Y", "%A %d/%m/%Y",
             "%d/%m/%Y", "%d.%m.%Y", "%a, %d %b %Y", "%A, %B %d, %Y", "%b %d '%y"]


def parse_written_date(text: str) -> tuple[datetime.date, str | None]:
    """The date a text names, and its weekday name if it gives one; fails on a text that names none."""
    text = re.sub(r"\b(\d{1,2})(st|nd|rd|th)\b", r"\1", text)
    text = re.sub(r"\b(the )([a-z-]+)( of)", lambda m: f"{m[1]}{_WORDS.get(m[2], m[2])}{m[3]}", text)
    for fmt in _STRPTIME:
        try:
            parsed = datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
        weekday = text.split()[0].strip(",") if "%A" in fmt or "%a" in fmt else None
        return parsed.date(), weekday
    raise AssertionError(f"no format reads {text!r}")


def test_every_format_reads_back_as_the_same_date_with_its_true_weekday():
    rng = np.random.default_rng(0)
    days = (LAST_DATE - FIRST_DATE).days
    samples = [FIRST_DATE, LAST_DATE, datetime.date(2000, 2, 29), datetime.date(2021, 3, 3)] + \
        [FIRST_DATE + datetime.timedelta(days=int(k)) for k in rng.integers(0, days + 1, size=60)]
    for style in DATE_FORMATS:
        for date in samples:
            text = format_date(date, style)
            parsed, weekday = parse_written_date(text)
            assert parsed == date, (style, text)
            if weekday is not None:
                assert weekday == date.strftime("%A" if len(weekday) > 3 else "%a"), (style, text)


def test_the_parser_of_this_test_can_tell_a_wrong_date():
    """The check above could not pass on a generator that wrote another day, or a wrong weekday."""
    assert parse_written_date("the twenty-first of June, 2050")[0] == datetime.date(2050, 6, 21)
    assert parse_written_date("Tuesday 03/03/2021") == (datetime.date(2021, 3, 3), "Tuesday")  # (a Wednesday)
    assert datetime.date(2021, 3, 3).strftime("%A") != "Tuesday"
    with pytest.raises(AssertionError):
        parse_written_date("03/13/2021")  # month 13: day-first is the only order


def test_the_dates_are_valid_iso_their_splits_disjoint_and_the_seed_decides():
    train, val = dates_task_splits(3000, 500, seed=4)
    assert len(train) == 3000 and len(val) == 500
    for text, iso in train + val:
        date = datetime.date.fromisoformat(iso)
        assert FIRST_DATE <= date <= LAST_DATE and date.isoformat() == iso
        assert parse_written_date(text)[0] == date, text
    assert not {iso for _, iso in train} & {iso for _, iso in val}
    assert len({iso for _, iso in train}) == 3000  # each day once
    assert dates_task_splits(3000, 500, seed=4) == (train, val)
    assert dates_task_splits(3000, 500, seed=5) != (train, val)
    drawn = {s for text, iso in train[:300] for s in DATE_FORMATS
             if format_date(datetime.date.fromisoformat(iso), s) == text}
    assert drawn == set(DATE_FORMATS)


def test_the_dates_task_refuses_more_dates_than_its_century_holds():
    with pytest.raises(ValueError, match="36525 days"):
        dates_task_splits(36000, 1000)
    with pytest.raises(ValueError, match="format_date: unknown style"):
        format_date(FIRST_DATE, "yyyy")


# ------------------------------------------------------------------ source<TAB>target files
def _write(tmp_path, data: bytes, name="pairs.tsv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_pairs_reads_two_columns_and_ignores_a_third(tmp_path):
    path = _write(tmp_path, b"Go.\tVa !\tCC-BY 2.0 (France)\n\nI'm hungry.\tJ'ai faim.\r\n")
    pairs, text = read_pairs(path)
    assert pairs == [("Go.", "Va !"), ("I'm hungry.", "J'ai faim.")]
    assert text.startswith("Go.\tVa !")


@pytest.mark.parametrize("data, message", [
    (b"Go.\tVa !\nHi. Salut !\n", r"pairs.tsv': line 2 has no tab: 'Hi. Salut !'"),
    (b"Go.\tVa !\n\n\t Salut !\n", r"pairs.tsv': line 3 has an empty source"),
    (b"Go.\t  \n", r"pairs.tsv': line 1 has an empty target"),
    (b"Go.\tVa !\nCaf\xe9\tcaf\xe9\n", r"pairs.tsv': not UTF-8 text \(byte 0xe9 at offset 12\), on line 2"),
    (b"\n \n", r"pairs.tsv': no source<TAB>target line"),
    (b"", r"pairs.tsv': empty"),
])
def test_read_pairs_names_the_file_and_the_line_at_fault(tmp_path, data, message):
    with pytest.raises(CorpusError, match=message):
        read_pairs(_write(tmp_path, data))


def test_read_pairs_names_a_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="nothere.tsv': no such file"):
        read_pairs(tmp_path / "nothere.tsv")


def test_split_pairs_keeps_a_source_in_one_split_and_refuses_too_few():
    pairs = [(f"s{i % 30}", f"t{i}") for i in range(60)] + [("s0", "t0")]  # two targets a source, one pair twice
    train, val, test = split_pairs(pairs, 0.1, 0.2, seed=1)
    sources = [{s for s, _ in part} for part in (train, val, test)]
    assert [len(s) for s in sources] == [21, 3, 6]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert sorted(train + val + test) == sorted(set(pairs))
    assert split_pairs(pairs, 0.1, 0.2, seed=1) == (train, val, test)
    with pytest.raises(ValueError, match="too few pairs: 9 distinct sources, where at least 10"):
        split_pairs([(f"s{i}", "t") for i in range(9)])
    with pytest.raises(ValueError, match="val_fraction"):
        split_pairs(pairs, 0.0)


def test_split_pairs_defaults_and_the_edges_of_what_it_accepts():
    """Ten percent each for validation and test, seed 0; the fewest sources and the largest fractions that still
    leave one to train on are taken, one past them refused by name."""
    pairs = [(f"s{i}", f"t{i}") for i in range(30)]
    assert [len(part) for part in split_pairs(pairs)] == [24, 3, 3]
    assert split_pairs(pairs) == split_pairs(pairs, 0.1, 0.1, seed=0) != split_pairs(pairs, 0.1, 0.1, seed=1)
    ten = pairs[:10]
    assert [len(part) for part in split_pairs(ten, least=10)] == [8, 1, 1]  # exactly `least` sources
    assert [len(part) for part in split_pairs(ten, 0.45, 0.4)] == [1, 5, 4]  # ceil(4.5) + ceil(4) leave one
    with pytest.raises(ValueError, match=r"val_fraction=0.5 and test_fraction=0.5 hold out 5 and 5 of the 10 "
                                         r"distinct sources \(each rounded up\): none is left to train on"):
        split_pairs(ten, 0.5, 0.5)
    with pytest.raises(ValueError, match="too few pairs: 10 distinct sources, where at least 11"):
        split_pairs(ten, least=11)
    for val, test, name in [(1.0, 0.1, "val_fraction"), (0.1, 0.0, "test_fraction"), (0.1, 1.0, "test_fraction")]:
        with pytest.raises(ValueError, match=rf"split_pairs: {name} must be a number in \(0, 1\), got"):
            split_pairs(pairs, val, test)


def test_a_long_line_without_a_tab_is_shown_cut_to_60_characters(tmp_path):
    sixty, sixty_one = "x" * 59 + "y", "x" * 60 + "z"
    with pytest.raises(CorpusError, match=rf"line 1 has no tab: '{sixty}' \(each"):
        read_pairs(_write(tmp_path, sixty.encode()))
    with pytest.raises(CorpusError, match=rf"line 1 has no tab: '{'x' * 57}\.\.\.' \(each"):
        read_pairs(_write(tmp_path, sixty_one.encode()))


def test_sources_that_read_the_same_share_a_split():
    """"Go." and "go." are one sentence to a lower-casing tokenizer: one must not be trained on and the other
    tested. ``same`` says which sources are one; the translate task passes its tokenizer's reading."""
    pairs = [(f"S{i}.", f"t{i}") for i in range(30)] + [(f"s{i} .", f"u{i}") for i in range(30)]
    parts = split_pairs(pairs, 0.2, 0.2, seed=3, same=lambda source: source.lower().replace(" ", ""))
    seen = [{source.lower().replace(" ", "") for source, _ in part} for part in parts]
    assert [len(part) for part in parts] == [36, 12, 12] and [len(s) for s in seen] == [18, 6, 6]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    plain = [{source.lower().replace(" ", "") for source, _ in part} for part in split_pairs(pairs, 0.2, 0.2, seed=3)]
    assert plain[0] & (plain[1] | plain[2])  # without it the two spellings of a sentence fall apart


# ------------------------------------------------------------------ the tokenizer pair
def test_a_tokenizer_pair_round_trips_through_its_dict():
    source = WordTokenizer.from_texts(["The 3rd of March, 2021", "march 3 2021"])
    pair = TokenizerPair(source, CharTokenizer(tasks.ISO_DATE_CHARS))
    again = tokenizer_from_dict(pair.to_dict())
    assert isinstance(again, TokenizerPair) and again == pair
    assert again.source.encode("the 3rd of march, 2021") == source.encode("The 3rd of March, 2021")
    assert again.target.decode(again.target.encode("2021-03-03")) == "2021-03-03"
    assert again != TokenizerPair(CharTokenizer(tasks.ISO_DATE_CHARS), source)  # the sides are not interchangeable
    with pytest.raises(TypeError, match="TokenizerPair: target must be a Tokenizer"):
        TokenizerPair(source, "0123456789")
    with pytest.raises(ValueError, match="tokenizer_from_dict"):
        tokenizer_from_dict({"type": "pair", "source": source.to_dict(), "target": {"type": "bytes"}})


# ------------------------------------------------------------------ the two tasks
def test_the_dates_task_reads_words_and_writes_iso_characters():
    setup = tasks.build("dates", n_train=200, n_val=10, n_test=20, d_model=16, heads=2, layers=1, d_ff=32)
    tok = setup.tokenizer
    assert setup.kind == "seq2seq" and tok.target.itos[4:] == list("-0123456789")
    for _, tgt in setup.test:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", tok.target.decode(tgt))
    assert setup.model.max_len >= max(max(len(s), len(t) + 1) for s, t in setup.test)
    maps = setup.sample(setup.model)
    (name, weights, queries, keys, mask) = maps[0]
    sources = [[tok.source.itos[i] for i in src] for src, _ in setup.test]
    assert name == "cross_attention" and keys in sources
    assert len(keys) == max(map(len, sources[:20]))  # a date of many words: the most to align
    assert queries[0] == "<bos>" and set(queries) <= set(tok.target.itos)  # untrained: any of the target's tokens
    assert weights.shape == (2, len(queries), len(keys))
    assert mask.shape == (1, 1, len(keys)) and mask.all()  # the source's padding: none in a batch of one


def test_the_translate_task_builds_its_vocabularies_from_the_training_split(pairs_file):
    setup = tasks.build("translate", pairs=str(pairs_file), d_model=16, heads=2, layers=1, d_ff=32, vocab_size=30)
    tok = setup.tokenizer
    assert setup.settings["pairs"] == str(pairs_file) and len(setup.settings["pairs_sha256"]) == 16
    assert tok.source.vocab_size == 30 and tok.target.vocab_size == 30  # capped by frequency
    assert tok.source.lower and "?" in tok.source.tokenize("Where is the cat?")  # lower-cased, punctuation apart
    assert len(setup.val) == 4 and len(setup.test) == 4  # 10% of 40 sources each
    pairs_file.write_text(PAIRS.replace("Merci", "Merci bien"), encoding="utf-8")
    with pytest.raises(CorpusError, match="changed since"):
        tasks.build("translate", **setup.settings)


def test_the_translate_task_names_its_file_in_every_refusal(tmp_path, pairs_file):
    with pytest.raises(ValueError, match="--pairs FILE"):
        tasks.build("translate")
    few = tmp_path / "few.tsv"
    few.write_text("".join(PAIRS.splitlines(keepends=True)[:5]), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"few.tsv': split_pairs: too few pairs: 5 distinct sources"):
        tasks.build("translate", pairs=str(few))
    with pytest.raises(CorpusError, match=r"en-fr.tsv'.*40 have a side longer than max_len=2 words"):
        tasks.build("translate", pairs=str(pairs_file), max_len=2)


def test_a_reference_unk_is_a_miss_in_the_seq2seq_metrics():
    """translate's held-out targets hold <unk> for words outside the target vocabulary, and a model writing <unk>
    there was counted right: with --set vocab_size=5, 77.5% exact match on all-<unk> outputs. The word was not
    written (sacreBLEU scores against the raw text): a reference <unk> is now a miss, for both figures."""
    import minitransformer as mt
    from minitransformer import nn
    from minitransformer.data import BOS, EOS, UNK

    class WritesUnkThenEos(nn.Module):  # <bos> -> <unk>, then <eos>: "an unknown word", whatever the source
        max_len = 8
        config = {"tgt_vocab": 8}

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(mt.zeros(1))

        def encode(self, src, src_mask):
            return mt.zeros(src.shape[0], src.shape[1], 2)

        def new_cache(self):
            return None

        def decode(self, tgt_in, memory, src_mask=None, tgt_mask=None, cache=None):
            nxt = np.where(tgt_in.numpy() == BOS, UNK, EOS)
            return mt.tensor(np.eye(8, dtype=np.float32)[nxt])  # (B, T, 8): one-hot logits of the next token

        def forward(self, src, tgt_in, src_mask=None, tgt_mask=None):
            return self.decode(tgt_in, None)

    pairs = [([4], [UNK]), ([5], [UNK]), ([6], [7])]  # two references unknown, one known word the model misses
    m = tasks.seq2seq_metrics(pairs)(WritesUnkThenEos())
    assert m["accuracy"] == 0.0  # was 2/3
    assert m["token_accuracy"] == 0.5  # the three <eos> right, the two <unk> and the 7 missed; was 5/6
    assert tasks.seq2seq_metrics([([6], [7])])(WritesUnkThenEos())["token_accuracy"] == 0.5  # no <unk>: as before

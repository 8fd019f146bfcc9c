"""Data: tokenizers, generated tasks, a corpus that ships with the package, and batching with masks.

* ``tokenizers`` -- :class:`CharTokenizer`, :class:`WordTokenizer`, :class:`BPETokenizer` (byte-pair
  encoding, learned merges of characters); the specials
  ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3 in every vocabulary.
* ``tasks`` -- digit ``copy`` / ``reverse`` / ``sort`` (sequence to sequence) and the
  ``negation`` sentiment task, which a bag of words cannot solve but attention can.
* ``translation`` -- the ``dates`` task (dates written by people to ISO 8601) and ``source<TAB>target``
  pairs read from a file of your own, for the encoder-decoder.
* ``corpus`` -- ``load_corpus("tiny")``, about 32 KB of English for a character language model;
  ``read_text(path)``, a text of your own.
* ``batching`` -- padding, :class:`Batch` with its attention masks, seeded :func:`batches` (of examples) and
  :func:`token_batches` (of tokens, the paper's).

Everything here is made on the host (lists of ids, NumPy); a :class:`Batch` holds Tensors on the
current backend.
"""

from .batching import (
    Batch,
    DataLoader,
    batches,
    make_classification_batch,
    make_lm_batch,
    make_seq2seq_batch,
    pad_sequences,
    seq2seq_length,
    token_batches,
)
from .corpus import (
    CorpusError,
    available_corpora,
    load_corpus,
    read_text,
    split_corpus,
    unigram_cross_entropy,
    unigram_entropy,
)
from .tasks import (
    DIGIT_TASKS,
    DIGITS,
    NEGATION_WORDS,
    bag_of_words_ceiling,
    digit_task,
    digit_task_splits,
    digit_tokenizer,
    is_negated,
    negation_reviews,
    negation_task,
    negation_tokenizer,
)
from .tokenizers import (
    BOS,
    BOS_TOKEN,
    EOS,
    EOS_TOKEN,
    PAD,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    UNK,
    UNK_TOKEN,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    TokenizerPair,
    WordTokenizer,
    tokenizer_from_dict,
)
from .translation import (
    DATE_FORMATS,
    FIRST_DATE,
    LAST_DATE,
    dates_task_splits,
    format_date,
    parse_pairs,
    read_pairs,
    split_pairs,
)

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "UNK",
    "PAD_TOKEN",
    "BOS_TOKEN",
    "EOS_TOKEN",
    "UNK_TOKEN",
    "SPECIAL_TOKENS",
    "Tokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "BPETokenizer",
    "TokenizerPair",
    "tokenizer_from_dict",
    "DIGITS",
    "DIGIT_TASKS",
    "digit_tokenizer",
    "digit_task",
    "digit_task_splits",
    "NEGATION_WORDS",
    "negation_tokenizer",
    "negation_reviews",
    "negation_task",
    "is_negated",
    "bag_of_words_ceiling",
    "DATE_FORMATS",
    "FIRST_DATE",
    "LAST_DATE",
    "format_date",
    "dates_task_splits",
    "parse_pairs",
    "read_pairs",
    "split_pairs",
    "available_corpora",
    "load_corpus",
    "read_text",
    "CorpusError",
    "split_corpus",
    "unigram_entropy",
    "unigram_cross_entropy",
    "Batch",
    "pad_sequences",
    "make_seq2seq_batch",
    "seq2seq_length",
    "make_classification_batch",
    "make_lm_batch",
    "batches",
    "token_batches",
    "DataLoader",
]

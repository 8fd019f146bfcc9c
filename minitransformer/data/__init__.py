"""Data: tokenizers, generated tasks, a corpus that ships with the package, and batching with masks.

* ``tokenizers`` -- :class:`CharTokenizer`, :class:`WordTokenizer`; the specials
  ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3 in every vocabulary.
* ``tasks`` -- digit ``copy`` / ``reverse`` / ``sort`` (sequence to sequence) and the
  ``negation`` sentiment task, which a bag of words cannot solve but attention can.
* ``corpus`` -- ``load_corpus("tiny")``, about 32 KB of English for a character language model;
  ``read_text(path)``, a text of your own.
* ``batching`` -- padding, :class:`Batch` with its attention masks, seeded :func:`batches`.

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
    digit_task,
    digit_task_splits,
    digit_tokenizer,
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
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    tokenizer_from_dict,
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
    "make_classification_batch",
    "make_lm_batch",
    "batches",
    "DataLoader",
]

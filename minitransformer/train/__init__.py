"""Layer 7: training: the loop, metrics, checkpoints, decoding, and ready-made task setups."""

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    average_checkpoints,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from .decoding import beam_search, generate, greedy_decode, length_penalty
from .metrics import RunningMean, binary_accuracy, binary_f1, exact_match, perplexity, strip_after_eos, token_accuracy
from .tasks import (
    classification_loss,
    classification_metrics,
    lm_loss,
    lm_metrics,
    model_from_checkpoint,
    seq2seq_loss,
    seq2seq_metrics,
    warmup_schedule,
)
from .threads import get_blas_threads, set_blas_threads
from .trainer import Trainer, TrainingDiverged, TrainingInterrupted, reaches_target

__all__ = [
    "Checkpoint", "CheckpointError", "save_checkpoint", "read_checkpoint", "load_checkpoint", "model_from_checkpoint",
    "average_checkpoints",
    "greedy_decode", "beam_search", "generate", "length_penalty",
    "RunningMean", "token_accuracy", "binary_accuracy", "binary_f1", "exact_match", "strip_after_eos", "perplexity",
    "seq2seq_loss", "classification_loss", "lm_loss", "seq2seq_metrics", "classification_metrics", "lm_metrics",
    "warmup_schedule",
    "Trainer", "TrainingDiverged", "TrainingInterrupted", "reaches_target", "set_blas_threads", "get_blas_threads",
]

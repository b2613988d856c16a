"""Training-engine building blocks: optimiser and schedule, checkpoints, logging, distributed
setup, mixed precision and a progress bar.

Each piece is independent of any model; a recipe's training loop combines them.
"""

from hyperkit.engine.checkpoint import (
    checkpoint_path,
    ensure_writable,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from hyperkit.engine.distributed import (
    DistributedInfo,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup_distributed,
    seed_everything,
    setup_distributed,
)
from hyperkit.engine.precision import PRECISIONS, autocast_context, make_grad_scaler
from hyperkit.engine.progress import ProgressBar
from hyperkit.engine.schedule import build_optimizer, cosine_with_warmup
from hyperkit.engine.tensorboard import (
    Logger,
    read_histogram_tags,
    read_histograms,
    read_hparams,
    read_scalars,
    read_text,
)

__all__ = [
    "PRECISIONS",
    "DistributedInfo",
    "Logger",
    "ProgressBar",
    "all_reduce_mean",
    "autocast_context",
    "barrier",
    "broadcast_object",
    "build_optimizer",
    "checkpoint_path",
    "cleanup_distributed",
    "cosine_with_warmup",
    "ensure_writable",
    "latest_checkpoint",
    "load_checkpoint",
    "make_grad_scaler",
    "prune_checkpoints",
    "read_histogram_tags",
    "read_histograms",
    "read_hparams",
    "read_scalars",
    "read_text",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
    "setup_distributed",
]

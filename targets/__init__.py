"""Built-in target architectures, registered by name (``hyperkit.list_targets()``).

One module per family; importing this package registers every builder.
"""

from hyperkit.registry import create_target, list_targets, register_target
from hyperkit.targets import cnn, gnn, hypernet, mlp, tabular, transformer  # noqa: F401
from hyperkit.targets.cnn import CNN
from hyperkit.targets.gnn import GAT, GCN
from hyperkit.targets.hypernet import Hypernet
from hyperkit.targets.mlp import MLP
from hyperkit.targets.tabular import LowRankLinear, MotherNetChild
from hyperkit.targets.transformer import TransformerClassifier

__all__ = ["CNN", "GAT", "GCN", "Hypernet", "LowRankLinear", "MLP", "MotherNetChild", "TransformerClassifier",
           "create_target", "list_targets", "register_target"]

"""Pictures: every function returns a matplotlib ``Figure`` (show it in a notebook, or ``fig.savefig``).

Figures are built without ``pyplot`` (no global state, nothing to close), from Tensors or arrays of
any backend.

==========================================  =====================================================
:func:`draw_graph`                          the computation graph behind a tensor
:func:`draw_architecture`                   a model as the paper's figure 1, its modules by name
:func:`attention_heatmap`                   one attention map ``(L, S)`` with token labels
:func:`attention_heads`                     every head of a layer ``(heads, L, S)``
:func:`attention_layers`                    every layer x head for one input
:func:`positional_encoding_heatmap`         the table ``PE`` ``(positions, d_model)``
:func:`positional_encoding_curves`          chosen columns of ``PE`` as waves
:func:`position_similarity`                 :math:`PE\\,PE^\\top` between positions
:func:`training_curves`                     loss, accuracy, ... per step
:func:`training_pictures`                   a trained run's curves and attention maps, as PNG files
==========================================  =====================================================
"""

from .architecture import draw_architecture
from .attention import attention_heads, attention_heatmap, attention_layers
from .curves import training_curves, training_pictures
from .graph import draw_graph
from .positional import position_similarity, positional_encoding_curves, positional_encoding_heatmap

__all__ = [
    "draw_graph", "draw_architecture", "attention_heatmap", "attention_heads", "attention_layers",
    "positional_encoding_heatmap", "positional_encoding_curves", "position_similarity", "training_curves",
    "training_pictures",
]

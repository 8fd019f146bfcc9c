"""Pictures: every function returns a matplotlib ``Figure`` (show it in a notebook, or ``fig.savefig``)."""

from .graph import draw_graph

__all__ = ["draw_graph"]

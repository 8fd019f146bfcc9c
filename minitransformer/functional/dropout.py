r"""Dropout (Srivastava et al., 2014), used by the paper after every sub-layer and on the embeddings (section 5.4)."""

from __future__ import annotations

from .._arguments import require_real
from ..autograd import Tensor
from ._checks import require_float

__all__ = ["dropout"]


def check_probability(op: str, p) -> float:
    """``p`` as a float in [0, 1), or an error naming ``op`` (p = 1 would drop everything)."""
    return require_real(op, "the dropout probability p", p, 0.0, 1.0, high_open=True)


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    r"""Zero each element with probability :math:`p` and scale the survivors by :math:`1/(1-p)`.

    .. math:: y_i = \frac{m_i\, x_i}{1 - p}, \qquad m_i \sim \mathrm{Bernoulli}(1 - p)

    This is *inverted* dropout: the scaling happens while training, so
    :math:`\mathbb{E}[y_i] = x_i` and nothing needs rescaling at evaluation time, where dropout is
    the identity. The mask :math:`m` comes from the backend's seeded generator, so
    ``mt.manual_seed`` makes it reproducible. The gradient flows only through kept elements,
    scaled by the same :math:`1/(1-p)`.

    Parameters
    ----------
    x : Tensor
        Any shape, floating point.
    p : float
        Probability of dropping an element, in [0, 1) (the paper uses 0.1).
    training : bool
        When False (evaluation), ``x`` is returned unchanged; likewise when ``p == 0``. True by default, as in
        torch's ``F.dropout``: a Module of your own that calls this function must pass ``training=self.training``,
        or ``model.eval()`` does not turn its dropout off (``nn.Dropout`` does so).

    Returns
    -------
    Tensor
        The shape of ``x``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import dropout
    >>> x = mt.ones(8)
    >>> dropout(x, 0.5, training=False) is x
    True
    >>> sorted(set(dropout(x, 0.5).numpy().tolist()) - {0.0, 2.0})   # survivors become 1 / (1 - 0.5)
    []
    """
    require_float("dropout", "x", x)
    p = check_probability("dropout", p)
    if not training or p == 0.0:
        return x
    xp = x.backend.xp
    u = x.backend.uniform(x.shape, dtype=x.dtype_name, below_high=False)  # U[0, 1]: a 1.0 is kept, as it must be
    m = xp.astype(u >= p, x.dtype)  # m_i: 1 with probability 1 - p, else 0
    # one product x * (m / (1 - p)), whose gradient is ybar * m / (1 - p); a `where` on a random mask is slower
    return x * Tensor(m * (1.0 / (1.0 - p)), backend=x.backend)

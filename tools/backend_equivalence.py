"""Same weights, same data, two backends: do outputs and every gradient agree?

    python tools/backend_equivalence.py --backend cupy             # on a GPU machine
    python tools/backend_equivalence.py --backend array_api_strict # anywhere

For each model (encoder-decoder Transformer, decoder-only LM, classifier) the weights are made once
on NumPy, copied into a twin on the other backend through ``state_dict()``; the loss's value and
the gradient of every parameter are compared as the normwise relative error
max|a - b| / max|b|. Limits: 1e-5 in float32 (GPU reductions add in another order), 1e-12 in
float64. Prints a table; exits 1 if any comparison is over its limit.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.testing import rel_err

LIMITS = {"float32": 1e-5, "float64": 1e-12}


def _models():
    """(name, build, loss) triples; ``loss(model, data)`` is a scalar Tensor."""
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(4, 20, (3, 7)), rng.integers(4, 20, (3, 6))
    text, labels = rng.integers(1, 20, (3, 9)), rng.integers(0, 2, (3,)).astype(np.float64)
    text[0, 6:] = 0  # padding

    def seq2seq(model):
        logits = model(mt.tensor(src), mt.tensor(tgt[:, :-1]))
        return F.cross_entropy(logits, mt.tensor(tgt[:, 1:]), label_smoothing=0.1)

    def lm(model):
        logits = model(mt.tensor(src[:, :-1]))
        return F.cross_entropy(logits, mt.tensor(src[:, 1:]))

    def classify(model):
        logit = model(mt.tensor(text)).reshape(-1)
        return F.binary_cross_entropy_with_logits(logit, mt.tensor(labels, dtype=logit.dtype_name))

    return [
        ("Transformer", lambda: nn.Transformer(20, 20, 32, 4, 64, 2, 2, dropout=0.0, max_len=16), seq2seq),
        ("DecoderOnlyLM", lambda: nn.DecoderOnlyLM(20, 32, 4, 64, 2, max_len=16, dropout=0.0), lm),
        ("TransformerClassifier", lambda: nn.TransformerClassifier(20, 32, 4, 64, 1, max_len=16, dropout=0.0),
         classify),
    ]


def _run(build, loss, backend: str, dtype: str, state):
    with mt.backend.use(backend):
        model = build().to(dtype)
        model.load_state_dict(state)
        value = loss(model)
        value.backward()
        grads = {name: p.grad.numpy().astype(np.float64) for name, p in model.named_parameters() if p.grad is not None}
        return float(value.item()), grads


def compare(other: str, dtypes=("float32", "float64")) -> list[dict]:
    """One row per (model, dtype): the worst relative errors of the loss and of the gradients."""
    rows = []
    for name, build, loss in _models():
        for dtype in dtypes:
            with mt.backend.use("numpy"):
                mt.manual_seed(0)
                state = build().to(dtype).state_dict()
            ref_loss, ref_grads = _run(build, loss, "numpy", dtype, state)
            got_loss, got_grads = _run(build, loss, other, dtype, state)
            assert ref_grads.keys() == got_grads.keys(), "the two backends gave gradients to different parameters"
            # The key projection's bias gets a gradient that is 0 in exact arithmetic (adding q . b_K to
            # a whole row of scores leaves the softmax unchanged), so both backends hold rounding noise
            # there: it is measured against the largest gradient of the model, not against itself.
            scale = max(float(np.max(np.abs(g))) for g in ref_grads.values())
            errors = {
                k: (float(np.max(np.abs(got_grads[k] - g))) / scale if k.endswith("W_K.bias")
                    else rel_err(got_grads[k], g))
                for k, g in ref_grads.items()
            }
            worst = max(errors, key=errors.get)
            rows.append({
                "model": name, "dtype": dtype, "loss_rel": rel_err(got_loss, ref_loss),
                "grad_rel": errors[worst], "worst_param": worst,
                "limit": LIMITS[dtype], "parameters": len(ref_grads),
            })
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cupy", help="the backend compared with NumPy")
    args = parser.parse_args(argv)
    rows = compare(args.backend)
    print(f"numpy vs {args.backend}: normwise relative error, max|a-b|/max|b|")
    print(f"{'model':<22} {'dtype':<8} {'loss':>9} {'worst grad':>11} {'limit':>7}  worst parameter")
    ok = True
    for r in rows:
        bad = r["loss_rel"] > r["limit"] or r["grad_rel"] > r["limit"]
        ok &= not bad
        print(f"{r['model']:<22} {r['dtype']:<8} {r['loss_rel']:9.2e} {r['grad_rel']:11.2e} {r['limit']:7.0e}  "
              f"{r['worst_param']} ({r['parameters']} parameters){'  <-- over the limit' if bad else ''}")
    print("all within limits" if ok else "SOME OVER THE LIMIT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

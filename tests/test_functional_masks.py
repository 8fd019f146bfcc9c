"""causal_mask, padding_mask, combine_masks: True where a query may attend a key."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F


def test_causal_mask_is_the_lower_triangle():
    m = F.causal_mask(4)
    assert m.shape == (4, 4) and m.dtype_name == "bool"
    # query i may attend keys 0..i
    expected = [[i >= j for j in range(4)] for i in range(4)]
    np.testing.assert_array_equal(m.numpy(), expected)
    assert F.causal_mask(0).shape == (0, 0)


def test_padding_mask_marks_real_tokens_and_broadcasts_over_heads_and_queries():
    ids = mt.tensor([[4, 9, 0, 0], [7, 0, 3, 0]])
    m = F.padding_mask(ids, pad_id=0)
    assert m.shape == (2, 1, 1, 4) and m.dtype_name == "bool"
    np.testing.assert_array_equal(m.numpy()[:, 0, 0], [[True, True, False, False], [True, False, True, False]])


def test_padding_mask_takes_ids_as_an_embedding_does(backend):
    """padding_mask(np.array(ids), 0) was "ids must be a Tensor" while nn.Embedding and the models take a NumPy array
    or nested lists of ids: it lifts them as they do, onto the current backend, and checks them as a Tensor's."""
    ids = [[4, 9, 0], [7, 0, 3]]
    expected = F.padding_mask(mt.tensor(ids), pad_id=0).numpy()
    for given in (ids, np.array(ids), np.array(ids, dtype=np.int32)):
        m = F.padding_mask(given, pad_id=0)
        assert m.backend is backend and m.dtype_name == "bool"
        np.testing.assert_array_equal(m.numpy(), expected)
    with pytest.raises(TypeError, match=r"^padding_mask: ids must be integer token ids \(rows of the embedding table "
                                        r"E\), got float64 with shape \(1, 2\)$"):
        F.padding_mask(np.array([[1.0, 0.0]]), pad_id=0)
    with pytest.raises(ValueError, match=r"^tensor: data is ragged"):
        F.padding_mask([[1, 2], [3]], pad_id=0)


def test_combine_masks_is_a_none_aware_logical_and():
    causal = F.causal_mask(3)
    pad = F.padding_mask(mt.tensor([[1, 2, 0]]), pad_id=0)  # (1, 1, 1, 3)
    both = F.combine_masks(pad, causal)
    assert both.shape == (1, 1, 3, 3)
    expected = np.tril(np.ones((3, 3), dtype=bool)) & np.array([True, True, False])
    np.testing.assert_array_equal(both.numpy()[0, 0], expected)
    assert F.combine_masks(None, causal) is causal
    assert F.combine_masks(causal, None) is causal
    assert F.combine_masks(None, None) is None


def test_causal_mask_length_may_be_a_numpy_integer():
    np.testing.assert_array_equal(F.causal_mask(np.int64(3)).numpy(), F.causal_mask(3).numpy())
    with pytest.raises(TypeError, match=r"causal_mask: T must be an integer >= 0, got True"):
        F.causal_mask(True)


def test_padding_mask_refuses_a_pad_id_that_is_not_an_integer():
    """None, 0.5, "0" or True compared unequal to every id and hid nothing, without a word."""
    ids = mt.tensor([[5, 7, 0], [0, 3, 4]])
    for pad_id in (None, 0.5, "0", True, [0, 0, 0]):
        with pytest.raises(TypeError, match=r"padding_mask: pad_id must be an int \(the id of the padding token\)"):
            F.padding_mask(ids, pad_id=pad_id)


@pytest.mark.parametrize("pad_id", [0, np.int64(0), np.int32(0)])
def test_padding_mask_pad_id_may_be_a_numpy_integer_on_every_backend(pad_id, backend):
    ids = mt.tensor([[5, 7, 0], [0, 3, 4]])  # on the current backend: array-api-strict refused np.int64(0)
    expected = [[True, True, False], [False, True, True]]
    np.testing.assert_array_equal(F.padding_mask(ids, pad_id).numpy()[:, 0, 0], expected)


def test_mask_bad_input():
    with pytest.raises(ValueError, match=r"causal_mask: T must be an integer >= 0, got -1"):
        F.causal_mask(-1)
    with pytest.raises(ValueError, match=r"padding_mask: ids must have shape \(batch, S\), got \(3,\)"):
        F.padding_mask(mt.tensor([1, 2, 0]), pad_id=0)
    with pytest.raises(TypeError, match=r"padding_mask: ids must be integer token ids \(rows of the embedding table "
                                        r"E\), got float32"):
        F.padding_mask(mt.zeros(2, 3), pad_id=0)
    with pytest.raises(ValueError, match=r"combine_masks: shapes \(3, 3\) and \(2, 2\) do not broadcast"):
        F.combine_masks(F.causal_mask(3), F.causal_mask(2))
    with pytest.raises(TypeError, match=r"combine_masks: the mask must be boolean"):
        F.combine_masks(F.causal_mask(2), mt.ones(2, 2))

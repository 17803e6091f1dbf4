"""Where the kept weights are, as gaps in a few bits: Deep Compression's relative index.

A pruned layer keeps ``a`` of its ``n`` weights. CSR stores each kept weight's column as
a 32-bit integer (plus a row pointer per row). Han, Mao & Dally (2016, Section 2; the
format goes back to Han et al. 2015) store instead the *difference* between the positions
of consecutive kept weights, in 8 bits for convolutional layers and 5 bits for fully
connected ones; when a difference does not fit, they insert a *padding zero*: an entry
with weight zero that only moves the position forward. Their figure's example uses 3
bits, where a difference larger than 8 needs a filler.

Here the weight is read as one flat array (C order: row after row, so the order of CSR;
a convolution kernel (O, C, KH, KW) row by row of its (O × C·KH·KW) matrix), and:

* the entry before the first is at position −1; an entry ``d`` positions after the
  previous one stores ``d − 1`` in ``g`` bits, so one field covers ``d = 1 ... 2^g``;
* when ``d > 2^g``, padding entries are inserted every ``2^g`` positions: each stores
  ``2^g − 1`` and codebook index 0, whose value is zero. An entry ``d`` positions on needs
  ``(d − 1) // 2^g`` of them;
* the decoder recovers the positions as ``cumsum(field + 1) − 1``, and an entry is a kept
  weight exactly when its codebook index is not 0.

This is how Han's released decoder for the compressed AlexNet reads the stream
(``songhan/Deep-Compression-AlexNet``, ``decode.py``: ``ind = np.cumsum(ind + 1) - 1``,
``code[ind] = spm``, ``data = codebook[code]``, pruned positions and padding entries both
decoding through code 0), so codebook entry 0 holds the value zero there too; it is the
reading we follow. What we could not check in the paper itself: whether the position
counts across rows (as in that decoder, and here) or restarts at each row.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RelativeIndex(NamedTuple):
    """The two parallel streams of a layer: ``gaps`` (the g-bit fields) and ``codes``
    (each entry's codebook index, 0 for a padding entry); ``padding`` entries among them."""

    gaps: np.ndarray
    codes: np.ndarray
    padding: int


def encode_positions(positions: np.ndarray, codes: np.ndarray, gap_bits: int) -> RelativeIndex:
    """The relative index of kept weights at ``positions`` (increasing flat positions)
    whose codebook indices are ``codes`` (all ≥ 1).

    Examples
    --------
    With 2-bit gaps (one field covers d = 1 ... 4), kept weights at 0, 1 and 10:
    10 is 9 after 1, so two padding entries go at 5 and 9, then the weight 1 after that.

    >>> r = encode_positions(np.array([0, 1, 10]), np.array([3, 1, 2]), gap_bits=2)
    >>> r.gaps.tolist(), r.codes.tolist(), r.padding
    ([0, 0, 3, 3, 0], [3, 1, 0, 0, 2], 2)
    """
    positions = np.asarray(positions, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    span = 2 ** gap_bits  # the largest difference one field can hold
    differences = np.diff(positions, prepend=-1)
    if np.any(differences < 1):
        raise ValueError("positions must be increasing and non-negative")
    if np.any(codes < 1):
        raise ValueError("kept weights have codebook indices >= 1 (0 marks padding)")
    fillers = (differences - 1) // span  # padding entries before each kept weight
    entries = fillers + 1
    gaps = np.full(int(entries.sum()), span - 1, dtype=np.int64)
    out_codes = np.zeros(gaps.size, dtype=np.int64)
    last = np.cumsum(entries) - 1  # where each kept weight lands, after its fillers
    gaps[last] = differences - 1 - fillers * span
    out_codes[last] = codes
    return RelativeIndex(gaps, out_codes, int(fillers.sum()))


def decode_positions(gaps: np.ndarray, codes: np.ndarray, gap_bits: int, size: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The kept weights' flat positions and codebook indices from the two streams (the
    inverse of :func:`encode_positions`), for a weight of ``size`` entries.

    Raises
    ------
    ValueError
        When an entry would lie beyond the weight, or a padding entry does not carry
        the largest field (the encoder never writes one elsewhere).
    """
    gaps = np.asarray(gaps, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    positions = np.cumsum(gaps + 1) - 1
    if positions.size and positions[-1] >= size:
        raise ValueError(f"an entry at position {positions[-1]} lies beyond the weight's "
                         f"{size} entries")
    kept = codes != 0
    if np.any(gaps[~kept] != 2 ** gap_bits - 1):
        raise ValueError(f"a padding entry skips fewer than {2 ** gap_bits} positions (the "
                         f"encoder pads only where a gap does not fit)")
    if positions.size and not kept[-1]:
        raise ValueError("the last entry is padding (the encoder ends on a kept weight)")
    return positions[kept], codes[kept]

"""Huffman coding, written out: the tree, canonical codes, bit packing, decoding.

Deep Compression's last stage (Han, Mao & Dally 2016) Huffman-codes the two streams of a
quantised sparse layer, the codebook indices and the relative positions, because their
symbols are far from equally frequent: a few centroids near the middle of the weight
distribution take most weights, and short gaps are more common than long ones.

**The tree** (Huffman 1952). Put every symbol that occurs into a priority queue keyed by
its count. Repeatedly take the two lightest nodes out and put back one node that has them
as children and the sum of their counts as its weight. When one node is left it is the
root; a symbol's code length is its leaf's depth. No prefix code (no code word the start
of another) has a smaller total ``Σ count_s · length_s``.

**Canonical codes.** Only the lengths matter for the size, so the code words themselves
are chosen by a fixed rule that the decoder can repeat from the lengths alone: sort the
symbols by (length, symbol); the first gets code 0 (in its length's bits); each next one
gets the previous code plus one, shifted left by however much longer it is. A file then
stores, per code, how many symbols have each length and the symbols in that order (the
layout of JPEG's Huffman tables), not a tree.

**Bit packing.** Code words are written most significant bit first, one after another,
and the bits are packed into bytes by ``np.packbits``; the last byte is padded with zeros.

The decoder reads one bit at a time and walks down the canonical code: after reading
``n`` bits it holds an ``n``-bit number ``code``; the codes of length ``n`` are the
consecutive numbers ``first_n, first_n + 1, ...``, so ``code`` is one of them exactly
when ``code − first_n < count_n``.
"""

from __future__ import annotations

import heapq
import itertools
from typing import NamedTuple

import numpy as np


class CanonicalCode(NamedTuple):
    """A canonical prefix code: ``counts[n − 1]`` symbols have length ``n``
    (n = 1 ... max length); ``symbols`` in canonical order (by length, then value)."""

    counts: tuple[int, ...]
    symbols: tuple[int, ...]

    @property
    def max_length(self) -> int:
        return len(self.counts)

    def lengths(self) -> dict[int, int]:
        """The code length of each symbol."""
        lengths = np.repeat(np.arange(1, self.max_length + 1), self.counts)
        return dict(zip(self.symbols, lengths.tolist()))

    def codewords(self) -> dict[int, tuple[int, int]]:
        """``symbol -> (code as an integer, length)``, by the canonical rule."""
        words, code, previous = {}, 0, 0
        for symbol, length in sorted(self.lengths().items(), key=lambda item: (item[1], item[0])):
            code <<= length - previous
            words[symbol] = (code, length)
            code, previous = code + 1, length
        return words


# ---------------------------------------------------------------- the tree
def code_lengths(frequencies: dict[int, int]) -> dict[int, int]:
    """The Huffman code length of every symbol with a positive count.

    Parameters
    ----------
    frequencies : dict symbol -> count
        Symbols with count 0 get no code.

    Returns
    -------
    dict symbol -> length
        A lone symbol gets length 1 (a code word must have at least one bit); no symbol
        at all gives ``{}``.

    Examples
    --------
    >>> code_lengths({0: 5, 1: 2, 2: 1, 3: 1})
    {0: 1, 1: 2, 2: 3, 3: 3}
    """
    present = {symbol: int(count) for symbol, count in frequencies.items() if count > 0}
    if len(present) <= 1:
        return {symbol: 1 for symbol in present}
    # heap entries: (weight, tie-breaker, symbols under this node); merging two nodes puts
    # every symbol under them one level deeper
    tie = itertools.count()
    heap = [(count, next(tie), [symbol]) for symbol, count in sorted(present.items())]
    heapq.heapify(heap)
    depth = dict.fromkeys(present, 0)
    while len(heap) > 1:
        weight_a, _, symbols_a = heapq.heappop(heap)
        weight_b, _, symbols_b = heapq.heappop(heap)
        for symbol in symbols_a + symbols_b:
            depth[symbol] += 1
        heapq.heappush(heap, (weight_a + weight_b, next(tie), symbols_a + symbols_b))
    return depth


def canonical_code(lengths: dict[int, int]) -> CanonicalCode:
    """The canonical code with these code lengths (counts per length, sorted symbols)."""
    if not lengths:
        return CanonicalCode((), ())
    ordered = sorted(lengths.items(), key=lambda item: (item[1], item[0]))
    counts = np.bincount([length for _, length in ordered])[1:]
    return CanonicalCode(tuple(int(n) for n in counts), tuple(s for s, _ in ordered))


def build_code(stream: np.ndarray) -> CanonicalCode:
    """The canonical Huffman code of the symbols in ``stream`` (non-negative integers)."""
    stream = np.asarray(stream)
    symbols, counts = np.unique(stream, return_counts=True)
    return canonical_code(code_lengths(dict(zip(symbols.tolist(), counts.tolist()))))


def check_code(code: CanonicalCode, alphabet_size: int) -> None:
    """A ValueError unless ``code`` is a valid prefix code over ``0 ... alphabet_size − 1``
    that canonical decoding can use: counts that fit the lengths (Kraft's inequality
    ``Σ count_n 2⁻ⁿ ≤ 1``), the symbols in canonical order, each once and in the alphabet."""
    if sum(code.counts) != len(code.symbols):
        raise ValueError(f"the code lists {len(code.symbols)} symbols but its counts add up "
                         f"to {sum(code.counts)}")
    kraft = sum(count * 2.0 ** -length for length, count in enumerate(code.counts, start=1))
    if kraft > 1.0:
        raise ValueError(f"the code lengths are not those of a prefix code (Kraft sum "
                         f"{kraft:g} > 1)")
    if any(not 0 <= s < alphabet_size for s in code.symbols):
        raise ValueError(f"a code symbol lies outside the alphabet 0..{alphabet_size - 1}")
    start = 0
    for count in code.counts:  # within each length, strictly increasing symbols
        group = code.symbols[start:start + count]
        if any(a >= b for a, b in zip(group, group[1:])):
            raise ValueError("the code's symbols are not in canonical order")
        start += count
    if len(set(code.symbols)) != len(code.symbols):
        raise ValueError("a symbol appears twice in the code")


# ---------------------------------------------------------------- encoding
def encode(stream: np.ndarray, code: CanonicalCode) -> tuple[bytes, int]:
    """The code words of ``stream``, most significant bit first, packed into bytes.

    Returns
    -------
    (bytes, number of bits)
        The last byte is padded with zero bits.
    """
    stream = np.asarray(stream, dtype=np.int64).ravel()
    if stream.size == 0:
        return b"", 0
    words = code.codewords()
    table_code = np.zeros(int(stream.max()) + 1, dtype=np.int64)
    table_length = np.zeros(int(stream.max()) + 1, dtype=np.int64)
    for symbol, (word, length) in words.items():
        if symbol < table_code.size:
            table_code[symbol], table_length[symbol] = word, length
    codes, lengths = table_code[stream], table_length[stream]
    if np.any(lengths == 0):
        missing = np.unique(stream[lengths == 0])[:5].tolist()
        raise ValueError(f"symbols {missing} have no code word")
    return pack_codewords(codes, lengths)


def pack_codewords(codes: np.ndarray, lengths: np.ndarray) -> tuple[bytes, int]:
    """Write each ``codes[i]`` in ``lengths[i]`` bits, most significant first, one after
    another, and pack the bits into bytes (the last one padded with zeros).

    Bit ``j`` of code word ``i`` (counting from its first, most significant, bit) is
    ``(codes[i] >> (lengths[i] − 1 − j)) & 1``; all bits are computed at once.
    """
    codes = np.asarray(codes, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths  # where each code word begins in the bit string
    offset_in_word = np.arange(total) - np.repeat(starts, lengths)
    shift = np.repeat(lengths, lengths) - 1 - offset_in_word
    bits = (np.repeat(codes, lengths) >> shift) & 1
    return np.packbits(bits.astype(np.uint8)).tobytes(), total


def pack_fixed(values: np.ndarray, bits: int) -> bytes:
    """Every value in exactly ``bits`` bits (most significant first), packed into bytes:
    the fixed-width layout before Huffman coding, ``ceil(n · bits / 8)`` bytes."""
    values = np.asarray(values, dtype=np.int64).ravel()
    if values.size and (values.min() < 0 or values.max() >= 2**bits):
        raise ValueError(f"values must lie in [0, {2**bits}) to fit in {bits} bits")
    return pack_codewords(values, np.full(values.size, bits))[0]


def unpack_fixed(data: bytes, bits: int, count: int) -> np.ndarray:
    """The ``count`` values of ``bits`` bits each that :func:`pack_fixed` wrote."""
    bit_array = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:count * bits]
    if bit_array.size < count * bits:
        raise ValueError(f"{len(data)} bytes hold fewer than {count} values of {bits} bits")
    weights = 1 << np.arange(bits - 1, -1, -1, dtype=np.int64)
    return bit_array.reshape(count, bits).astype(np.int64) @ weights


# ---------------------------------------------------------------- decoding
def decode(data: bytes, code: CanonicalCode, count: int) -> np.ndarray:
    """The first ``count`` symbols coded in ``data`` (canonical decoding, bit by bit).

    Raises
    ------
    ValueError
        When the bits run out first, or a bit string is no code word (a code whose
        lengths do not fill Kraft's inequality leaves some unused), or more than the
        last byte's padding is left over, or that padding is not zero.
    """
    if count == 0:
        if data:
            raise ValueError(f"{len(data)} bytes where no symbol was expected")
        return np.zeros(0, dtype=np.int64)
    if not code.symbols:
        raise ValueError(f"{count} symbols to decode but the code has none")
    counts, symbols = code.counts, code.symbols
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
    out = []
    position, total = 0, len(bits)
    for _ in range(count):
        code_value = first = index = 0
        for length in range(1, len(counts) + 1):
            if position == total:
                raise ValueError(f"the bits ran out after {len(out)} of {count} symbols")
            code_value |= bits[position]
            position += 1
            if code_value - first < counts[length - 1]:
                out.append(symbols[index + code_value - first])
                break
            # the codes of this length are first ... first + count − 1; the longer ones
            # start after them, one bit longer
            index += counts[length - 1]
            first = (first + counts[length - 1]) << 1
            code_value <<= 1
        else:
            raise ValueError(f"symbol {len(out)}: the bits are no code word")
    if total - position >= 8 or any(bits[position:]):
        raise ValueError(f"{total - position} bits left after {count} symbols (expected "
                         f"only the last byte's zero padding)")
    return np.asarray(out, dtype=np.int64)


def coded_bits(stream: np.ndarray, code: CanonicalCode) -> int:
    """How many bits :func:`encode` writes for ``stream`` (without packing it)."""
    lengths = code.lengths()
    symbols, counts = np.unique(np.asarray(stream), return_counts=True)
    return int(sum(lengths[s] * c for s, c in zip(symbols.tolist(), counts.tolist())))

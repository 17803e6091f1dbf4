"""Deep Compression's last two stages (Han, Mao & Dally 2016): weight sharing with trained
centroids, then a compressed file — relative indices, codebook indices, Huffman coding.

A pruned model becomes a small file in three calls::

    import tinysparse as ts
    from tinysparse import compress

    compress.share_weights(model, bits=5)          # k-means per layer, 2^5-entry codebooks
    ts.fit(model, data, epochs=2, lr=1e-4)         # optional: fine-tune the centroids
    report = compress.save_compressed(model, "lenet300.tsz")   # bytes of every stage
    model = compress.load_compressed("lenet300.tsz")           # ordinary layers again

* :mod:`.kmeans` — one-dimensional k-means, linear / density / random initialisation;
* :mod:`.sharing` — the weight-shared layers (codebook + indices; centroid gradients are
  sums of weight gradients), :func:`share_weights`, :func:`unshare`;
* :mod:`.relative_index` — positions as gaps of g bits, with padding entries;
* :mod:`.huffman` — the tree, canonical codes, bit packing, decoding;
* :mod:`.format` — the file: header, checksum, atomic writing, decoding, sizes per stage;
* :mod:`.soft_sharing` — soft weight-sharing (Ullrich et al. 2017): a Gaussian-mixture
  prior learned with the weights, then merging and quantisation to shared layers.
"""

from tinysparse.compress import huffman, kmeans, relative_index, soft_sharing
from tinysparse.compress.format import (
    DEFAULT_CONV_GAP_BITS,
    DEFAULT_FC_GAP_BITS,
    CompressedFileError,
    CompressionReport,
    LayerSizes,
    encode,
    load_compressed,
    read_header,
    save_compressed,
)
from tinysparse.compress.kmeans import INITIALISATIONS, Clustering, kmeans_1d
from tinysparse.compress.sharing import (
    MAX_BITS,
    MIN_BITS,
    SHARED_TWINS,
    SharedConv2d,
    SharedLayer,
    SharedLinear,
    check_bits,
    check_shareable,
    share_weights,
    shared_layers,
    unshare,
)
from tinysparse.compress.soft_sharing import (
    MixturePrior,
    quantise_to_prior,
    soft_weight_sharing,
)

__all__ = [
    "DEFAULT_CONV_GAP_BITS", "DEFAULT_FC_GAP_BITS", "INITIALISATIONS", "MAX_BITS", "MIN_BITS",
    "SHARED_TWINS", "Clustering", "CompressedFileError", "CompressionReport", "LayerSizes",
    "SharedConv2d", "SharedLayer", "SharedLinear", "check_bits", "check_shareable",
    "encode", "huffman",
    "kmeans", "kmeans_1d", "load_compressed", "read_header", "relative_index",
    "save_compressed",
    "share_weights", "shared_layers", "unshare",
    # soft weight-sharing (Ullrich et al. 2017)
    "MixturePrior", "quantise_to_prior", "soft_sharing", "soft_weight_sharing",
]

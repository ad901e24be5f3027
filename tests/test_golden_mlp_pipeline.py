"""The int8 MLP on the chip: a layer pipeline over the links (``mlp_pipeline``) against the
same MLP layer by layer through DRAM on one core (``mlp_layerwise``).

* The pipeline (layer L on core L, weights resident, micro-batches streaming core to core)
  equals the numpy ``requantize`` chain under the fixed pick order, the reversed one and
  random ones, with no core error and every link drained; with 8-wide features (one tile)
  and with wider ones (several K and N tiles per layer, partial tiles, partial micro-batch),
  and with fewer layers than cores (idle cores).
* The layer-wise version on ``golden.core.Core`` equals the same expectation, and moves
  exactly twice the intermediate activations more DRAM bytes than the whole pipeline.
"""

import numpy as np
import pytest

from ncore.golden import program as gp
from ncore.golden.chip import chip_priority
from ncore.golden.core import PRIORITY
from ncore.isa import CoreError
from ncore.params import NCoreParams

P4 = NCoreParams()  # 4 cores of 8×8, int8


def _picks(p, seed):
    return [
        ("priority", None),
        ("reversed", list(reversed(chip_priority(p.cores)))),
        *[(f"random{s}", np.random.default_rng(seed + s)) for s in range(2)],
    ]


def _model(rng, batch, feats):
    """x and layers as tests/test_golden_core.py ``test_mlp`` makes them: requantisation
    spreading the outputs over int8; the last layer without ReLU, zero point 3."""
    x = rng.integers(-128, 128, (batch, feats[0])).astype(np.int8)
    layers, h_std = [], 60.0
    for i, (fi, fo) in enumerate(zip(feats[:-1], feats[1:], strict=True)):
        acc_std = h_std * 74 * np.sqrt(fi)
        scale = np.maximum(1, 40.0 * (1 << 16) / acc_std * rng.uniform(0.5, 1.5, fo))
        lay = {
            "w": rng.integers(-128, 128, (fi, fo)).astype(np.int8),
            "scale": scale.astype(np.int64),
            "shift": np.full(fo, 16),
            "bias": rng.integers(-int(acc_std) - 1, int(acc_std) + 1, fo),
        }
        if i == len(feats) - 2:
            lay.update(relu=False, zero_point=3)
        layers.append(lay)
        h_std = 30.0
    return x, layers


CASES = [
    # batch, features, micro
    (64, (8, 8, 8, 8, 8), 16),
    (40, (16, 16, 12, 8), 16),  # several tiles per layer, partial tiles, 40 = 16 + 16 + 8
    (20, (11, 19, 5), 6),  # 2 layers on 4 cores: cores 2, 3 idle
]


def _dma_bytes(results):
    return sum(r.stats.dma_bytes_read + r.stats.dma_bytes_written for r in results)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_mlp_pipeline_vs_layerwise(case, seed):
    batch, feats, micro = CASES[case]
    s = seed(300 + case)
    rng = np.random.default_rng(s)
    x, layers = _model(rng, batch, feats)
    nl = len(layers)

    d = gp.mlp_pipeline(P4, x, layers, micro=micro)
    want = d.expected["out"]
    assert want.shape == (batch, feats[-1]) and want.dtype == np.int8
    assert len(np.unique(want)) > 10  # not a saturated, trivial result
    # The same numbers as the single-core mlp() builder.
    np.testing.assert_array_equal(gp.mlp(P4, x, layers).expected["out"], want)
    assert d.placed[nl:] == [None] * (P4.cores - nl)
    assert all(d.placed[c] is not None for c in range(nl))
    for name, pick in _picks(P4, s):
        chip = d.run(pick=pick)
        results = chip.results
        assert [r.error for r in results] == [CoreError.NONE] * P4.cores, name
        np.testing.assert_array_equal(d.outputs(chip.dram)["out"], want, err_msg=name)
        assert all(len(link) == 0 for link in chip.links), name
        sent, received = (
            sum(getattr(r.stats, k) for r in results) for k in ("send_rows", "recv_rows")
        )
        assert sent == received == batch * sum(-(-f // 8) for f in feats[1:-1]), name
    pipe_bytes = _dma_bytes(results)

    lw = gp.mlp_layerwise(P4, x, layers)
    core = lw.run()
    assert core.result.ok, core.result.error.name
    np.testing.assert_array_equal(lw.outputs(core.dram)["out"], want)
    lw_bytes = _dma_bytes([core.result])

    # Layer by layer, every intermediate activation is stored and loaded again; the
    # weights, parameters, x and the output move the same bytes in both versions.
    inter = sum(batch * f for f in feats[1:-1])
    print(f"\nMLP {batch}×{'→'.join(map(str, feats))}: pipeline {pipe_bytes} DMA bytes "
          f"(4 cores), layer-wise {lw_bytes} DMA bytes (1 core)")  # fmt: skip
    assert lw_bytes - pipe_bytes == 2 * inter
    if nl == 4:
        assert lw_bytes > 2 * pipe_bytes


def test_mlp_layerwise_blocks(seed):
    """Layer-wise with several double-buffered row blocks per layer, under other pick
    orders too."""
    rng = np.random.default_rng(seed(310))
    x, layers = _model(rng, 37, (16, 16, 12, 8))
    d = gp.mlp_layerwise(P4, x, layers, block_rows=8)
    assert d.info["blocks"] == 5
    for pick in (None, list(reversed(PRIORITY)), np.random.default_rng(1)):
        core = d.run(pick=pick)
        assert core.result.ok, core.result.error.name
        np.testing.assert_array_equal(d.outputs(core.dram)["out"], d.expected["out"])


def test_mlp_pipeline_rows_ne_cols(seed):
    """rows > cols: layer 0 has K tiles of ``rows``, later layers of ``cols``."""
    p = NCoreParams(cores=3, rows=8, cols=4, sbuf_depth=512, psum_depth=64)
    rng = np.random.default_rng(seed(320))
    x, layers = _model(rng, 21, (13, 10, 6))
    d = gp.mlp_pipeline(p, x, layers, micro=5)
    for name, pick in _picks(p, 7):
        chip = d.run(pick=pick)
        assert all(r.ok for r in chip.results), name
        np.testing.assert_array_equal(d.outputs(chip.dram)["out"], d.expected["out"], name)
    lw = gp.mlp_layerwise(p, x, layers)
    core = lw.run()
    assert core.result.ok
    np.testing.assert_array_equal(lw.outputs(core.dram)["out"], d.expected["out"])


def test_mlp_pipeline_limits():
    rng = np.random.default_rng(0)
    x, layers = _model(rng, 8, (8, 8, 8, 8, 8, 8))
    with pytest.raises(ValueError, match="cores"):
        gp.mlp_pipeline(P4, x, layers)
    x, layers = _model(rng, 8, (8, 64))
    with pytest.raises(ValueError, match="PSUM"):
        gp.mlp_pipeline(NCoreParams(psum_depth=16), x, layers, micro=8)

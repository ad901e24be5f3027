"""The parameter object: validation messages, canonical form, JSON round trip."""

import pytest

from ncore.params import NCoreParams, ParamError


def test_defaults_and_derived():
    p = NCoreParams()
    assert (p.cores, p.rows, p.cols) == (4, 8, 8)
    assert p.lane_width == 8 and not p.has_fp
    # 8 partitions × 4096 entries × 2 bytes: the documented 64 KiB SBUF per 8×8 core.
    assert p.rows * p.sbuf_depth * 2 == 64 * 1024
    assert NCoreParams(dtypes=("bf16", "int8")).dtypes == ("int8", "bf16")
    assert NCoreParams(dtypes="int8,fp16").lane_width == 16


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"rows": 0}, "rows must be in 1…256, not 0"),
        ({"cols": 300}, "cols must be in 1…256, not 300"),
        ({"rows": 2.5}, "rows must be an integer, not 2.5"),
        ({"rows": "8"}, "rows must be an integer, not '8'"),
        ({"rows": True}, "rows must be an integer, not True"),
        ({"dtypes": ("int4",)}, "unknown dtype 'int4'; choose from int8, fp16, bf16"),
        ({"dtypes": ()}, "dtypes must name at least one"),
        ({"dtypes": ("int8", "int8")}, "dtypes lists a type twice"),
        ({"sbuf_depth": 1000}, "sbuf_depth must be a power of two"),
        ({"axi_data_width": 100}, "axi_data_width must be 64, 128, 256 or 512, not 100"),
        ({"cores": 0}, "cores must be in 1…16, not 0"),
    ],
)
def test_validation_messages(kwargs, message):
    with pytest.raises(ParamError) as e:
        NCoreParams(**kwargs)
    assert message in str(e.value)


def test_frozen_and_json_round_trip(tmp_path):
    p = NCoreParams(rows=16, cols=4, dtypes=("int8", "bf16"))
    with pytest.raises(AttributeError):
        p.rows = 3
    f = tmp_path / "params.json"
    f.write_text(p.to_json())
    assert NCoreParams.from_json(f) == p
    with pytest.raises(ParamError, match="unknown parameter"):
        NCoreParams.from_dict({"rows": 4, "colz": 4})

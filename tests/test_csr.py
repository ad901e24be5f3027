# amaranth: UnusedElaboratable=no
"""Register-table validation of the CSR file."""

import pytest

from ncore.hw.csr import RO, RW, CsrFile, Reg


def test_table_errors():
    with pytest.raises(ValueError, match="not word aligned"):
        Reg("a", 2, RW)
    with pytest.raises(ValueError, match="unknown access"):
        Reg("a", 0, "WO")
    with pytest.raises(ValueError, match="share an offset"):
        CsrFile([Reg("a", 0, RW), Reg("b", 0, RO)])
    with pytest.raises(ValueError, match="does not fit 4 address bits"):
        CsrFile([Reg("a", 16, RW)], addr_width=4)

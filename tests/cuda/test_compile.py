"""Every CUDA kernel source compiles with nvcc (to PTX for sm_80 and sm_90), GPU or not."""
import shutil
import subprocess
from pathlib import Path

import pytest

# Slow: nvcc compiles every kernel source twice; left out by -m "not slow".
pytestmark = pytest.mark.slow

SOURCES = sorted((Path(__file__).resolve().parents[2] / "pycaffe2" / "operators").glob("*.cu"))
NVCC = shutil.which("nvcc")


def test_there_are_kernel_sources():
    assert SOURCES


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_kernel_source_compiles_to_ptx(source, arch, tmp_path):
    result = subprocess.run([NVCC, "--ptx", f"-arch={arch}", "-I", str(source.parent), str(source),
                             "-o", str(tmp_path / "out.ptx")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert ".entry" in (tmp_path / "out.ptx").read_text()

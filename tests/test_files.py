"""files.py: only regular files are read, and never past the cap."""
import os

import pytest

from pycaffe2.errors import DBError, NetFileError, PyCaffe2Error
from pycaffe2.files import check_regular_file, max_file_bytes, read_regular_file


def test_reads_a_regular_file_and_follows_symlinks_to_one(tmp_path):
    (tmp_path / "a.pb").write_bytes(b"abc")
    os.symlink(tmp_path / "a.pb", tmp_path / "link.pb")
    assert read_regular_file(tmp_path / "link.pb", NetFileError) == b"abc"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "net.pb")  # opening it for reading would block forever
    with pytest.raises(NetFileError, match=r"net\.pb: is not a regular file"):
        read_regular_file(tmp_path / "net.pb", NetFileError)


def test_a_device_is_refused(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("needs /dev/zero")
    os.symlink("/dev/zero", tmp_path / "zero.pb")
    with pytest.raises(NetFileError, match="not a regular file"):
        read_regular_file(tmp_path / "zero.pb", NetFileError)


def test_folders_missing_files_and_nul_bytes_name_the_path(tmp_path):
    with pytest.raises(NetFileError, match="is a folder"):
        read_regular_file(tmp_path, NetFileError)
    with pytest.raises(DBError, match=r"gone\.minidb: cannot read"):
        read_regular_file(tmp_path / "gone.minidb", DBError)
    with pytest.raises(NetFileError, match="cannot read"):
        read_regular_file(f"{tmp_path}/a\0b", NetFileError)


def test_the_cap_is_checked_before_reading(tmp_path, monkeypatch):
    (tmp_path / "big.pb").write_bytes(b"x" * 100)
    with pytest.raises(NetFileError, match="100 bytes, over the 99-byte cap"):
        read_regular_file(tmp_path / "big.pb", NetFileError, limit=99)
    assert check_regular_file(tmp_path / "big.pb", NetFileError, limit=100) == 100
    monkeypatch.setenv("PYCAFFE2_MAX_FILE_BYTES", "50")
    assert max_file_bytes() == 50
    with pytest.raises(NetFileError, match="over the 50-byte cap"):
        read_regular_file(tmp_path / "big.pb", NetFileError)
    monkeypatch.setenv("PYCAFFE2_MAX_FILE_BYTES", "lots")
    with pytest.raises(PyCaffe2Error, match="PYCAFFE2_MAX_FILE_BYTES must be a number"):
        max_file_bytes()


def test_reading_asks_for_the_file_size_not_the_cap(tmp_path):
    # read(n) allocates n bytes first: asking for a 4 EiB cap would fail with MemoryError
    (tmp_path / "a.pb").write_bytes(b"abc")
    assert read_regular_file(tmp_path / "a.pb", NetFileError, limit=1 << 62) == b"abc"

"""Damaged or unsuitable NumPy files: one line naming the problem and exit status 2."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from stages.cli import main

X = np.random.default_rng(0).random((20, 3))
Y = np.arange(20) % 2


def member(array: np.ndarray, allow_pickle: bool = False) -> bytes:  # type: ignore[type-arg]
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def huge_header() -> bytes:
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (400_000_000_000, 1)}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + X.tobytes()


def npz(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def bad_crc(path: Path) -> None:
    np.savez(path, X=X, y=Y)
    raw = bytearray(path.read_bytes())
    raw[200] ^= 0xFF
    path.write_bytes(bytes(raw))


CASES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "object arrays": (
        "npz",
        lambda p: npz(p, {"X.npy": member(np.array([{}] * 20), True), "y.npy": member(Y)}),
        "Object arrays cannot be loaded",
    ),
    "a bad CRC": ("npz", bad_crc, "Bad CRC-32"),
    "no X member": ("npz", lambda p: np.savez(p, A=X, y=Y), "needs arrays named 'X' and 'y'"),
    "a scalar y": ("npz", lambda p: np.savez(p, X=X, y=np.int64(3)), "y has shape ()"),
    "a 2-D y": ("npz", lambda p: np.savez(p, X=X, y=np.stack([Y, Y], 1)), "y has shape (20, 2)"),
    "complex features": ("npz", lambda p: np.savez(p, X=X + 1j, y=Y), "complex numbers"),
    "an empty .npz": ("npz", lambda p: p.write_bytes(b""), "not a readable NumPy file"),
    "an empty .npy": ("npy", lambda p: p.write_bytes(b""), "not a readable NumPy file"),
    "a huge .npy header": ("npy", lambda p: p.write_bytes(huge_header()), "not a readable"),
    "a huge member header": (
        "npz",
        lambda p: npz(p, {"X.npy": huge_header(), "y.npy": member(Y)}),
        "not a readable NumPy file",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_numpy_file_is_one_line_and_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suffix, write, expected = CASES[case]
    path = tmp_path / f"data.{suffix}"
    write(path)
    assert main(["run", str(path), "--quiet", "--k", "1-3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
    assert expected in err

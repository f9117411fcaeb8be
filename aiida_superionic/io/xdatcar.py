"""Streaming reader for VASP XDATCAR files (plain or gzip).

The file is read in batches of lines (tens of MB); each batch's coordinate lines are joined and
parsed by one call into numpy, so there is no Python loop over atoms and the peak memory is the
float32 result plus one batch. Variable-cell (NpT) XDATCARs are refused: the paper's runs are NVT.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..exceptions import TrajectoryFormatError
from .trajectory import Trajectory

#: Bytes of text per batch.
BATCH_BYTES = 32 * 1024 * 1024

Progress = Callable[[float, str], None]


def _open(path: Path):
    raw = open(path, 'rb')
    magic = raw.read(2)
    raw.seek(0)
    stream = gzip.GzipFile(fileobj=raw, mode='rb') if magic == b'\x1f\x8b' else raw
    return raw, io.BufferedReader(stream, buffer_size=1 << 20) if stream is not raw else raw


def exception_name(exc: BaseException) -> str:
    """``zlib.error`` for zlib's (its class is called ``error``), else the exception's class name."""
    return 'zlib.error' if isinstance(exc, zlib.error) else type(exc).__name__


def _floats(line: bytes, n: int, what: str, path: Path) -> list[float]:
    try:
        values = [float(x) for x in line.split()[:n]]
    except ValueError:
        values = []
    if len(values) != n:
        raise TrajectoryFormatError(f'{path.name}: not an XDATCAR (bad {what} line: {line.strip()[:60]!r})')
    return values


def _read_header(stream, path: Path) -> tuple[np.ndarray, list[str], list[bytes]]:
    lines = [stream.readline() for _ in range(7)]
    if not lines[-1]:
        raise TrajectoryFormatError(f'{path.name}: not an XDATCAR (header shorter than 7 lines)')
    scale = _floats(lines[1], 1, 'scale', path)[0]
    lattice = np.array([_floats(line, 3, 'lattice', path) for line in lines[2:5]])
    if scale < 0:  # VASP: a negative scale is the cell volume
        scale = (-scale / abs(np.linalg.det(lattice))) ** (1.0 / 3.0)
    cell = lattice * scale
    species_tokens = lines[5].split()
    try:
        counts = [int(x) for x in lines[6].split()]
    except ValueError:
        counts = []
    if not species_tokens or all(t.isdigit() for t in species_tokens):
        raise TrajectoryFormatError(
            f'{path.name}: VASP 4 XDATCAR without a species line; add the element symbols as line 6'
        )
    if len(counts) != len(species_tokens) or min(counts, default=0) <= 0:
        raise TrajectoryFormatError(f'{path.name}: species and atom-count lines of the header do not match')
    species = [t.decode().split('/')[0].split('_')[0] for t in species_tokens]
    symbols = [s for s, c in zip(species, counts, strict=True) for _ in range(c)]
    return cell, symbols, lines


def read_xdatcar(
    path: str | Path, *, stride: int = 1, allow_truncated: bool = False, progress: Progress | None = None
) -> Trajectory:
    """Read an XDATCAR (VASP 5 format, optionally gzip-compressed) into a :class:`Trajectory`.

    :param stride: keep every ``stride``-th frame (the others are skipped without parsing).
    :param allow_truncated: drop an incomplete last frame (a run killed while writing) instead of
        raising :class:`TrajectoryFormatError`.
    :param progress: callback ``progress(fraction_of_file, message)``.
    """
    path = Path(path)
    if stride < 1:
        raise TrajectoryFormatError(f'stride must be >= 1, got {stride}')
    try:
        return _read(path, stride, allow_truncated, progress)
    except (EOFError, OSError, gzip.BadGzipFile, zlib.error) as exc:
        raise TrajectoryFormatError(
            f'{path.name}: cannot read the file ({exception_name(exc)}: {exc})'
        ) from None


def _read(path: Path, stride: int, allow_truncated: bool, progress: Progress | None) -> Trajectory:
    size = path.stat().st_size
    raw, stream = _open(path)
    try:
        cell, symbols, _header = _read_header(stream, path)
        n = len(symbols)
        block = n + 1
        chunks: list[np.ndarray] = []
        pending: list[bytes] = []
        frame = 0  # frames seen
        cartesian = None
        while True:
            batch = stream.readlines(BATCH_BYTES)
            if batch:
                pending.extend(batch)
            n_full = len(pending) // block
            if not batch and len(pending) % block:
                # Trailing blank lines are harmless; anything else is a truncated frame.
                tail = pending[n_full * block :]
                if any(line.strip() for line in tail):
                    if not allow_truncated:
                        raise TrajectoryFormatError(
                            f'{path.name}: truncated frame {frame + n_full + 1}: expected {n} coordinate lines, '
                            f'found {max(0, len(tail) - 1)} (pass allow_truncated / --allow-truncated to drop it)'
                        )
            selected: list[bytes] = []
            for k in range(n_full):
                start = k * block
                head = pending[start].lower()
                if b'configuration' not in head:
                    raise TrajectoryFormatError(
                        f'{path.name}: frame {frame + 1} does not start with "Direct configuration=" '
                        '(a variable-cell XDATCAR from an NpT run? only fixed-cell NVT runs are supported)'
                    )
                if cartesian is None:
                    cartesian = head.lstrip().startswith(b'cart')
                if frame % stride == 0:
                    selected.append(b''.join(pending[start + 1 : start + block]))
                frame += 1
            del pending[: n_full * block]
            if selected:
                try:
                    values = np.array(b'\n'.join(selected).split(), dtype=np.float64)
                except ValueError:
                    values = np.empty(0)
                if values.size != len(selected) * n * 3:
                    raise TrajectoryFormatError(
                        f'{path.name}: malformed coordinates between frames {frame - len(selected) * stride + 1} '
                        f'and {frame}: expected 3 numbers per atom line'
                    )
                coords = values.reshape(len(selected), n, 3)
                if not np.all(np.isfinite(coords)):
                    bad = (
                        frame
                        - len(selected) * stride
                        + int(np.argmax(~np.isfinite(coords).all(axis=(1, 2)))) * stride
                    )
                    raise TrajectoryFormatError(f'{path.name}: NaN or infinite coordinate in frame {bad + 1}')
                if not cartesian:
                    coords = coords @ cell
                chunks.append(coords.astype(np.float32))
            if progress is not None:
                progress(min(1.0, raw.tell() / size) if size else 1.0, f'{frame} frames')
            if not batch:
                break
    finally:
        stream.close()
        raw.close()
    if frame == 0:
        raise TrajectoryFormatError(f'{path.name}: XDATCAR header but no complete frame')
    positions = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    return Trajectory(
        positions=positions,
        cell=cell,
        symbols=symbols,
        metadata={'source': str(path), 'format': 'xdatcar', 'frames_in_file': frame, 'stride': stride},
    )

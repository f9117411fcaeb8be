"""Trajectory readers: XDATCAR (streaming), vasprun.xml (streaming), ``.npz`` and anything ``ase.io`` reads."""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from ..exceptions import InputError, TrajectoryFormatError
from .trajectory import Trajectory
from .xdatcar import exception_name, read_xdatcar

Progress = Callable[[float, str], None]

FORMATS = ('xdatcar', 'vasprun', 'npz', 'ase')


#: Bytes of a file's beginning that :func:`sniff_format` looks at (after gzip decompression).
SNIFF_BYTES = 1 << 16


def _head(path: Path) -> bytes:
    """The first :data:`SNIFF_BYTES` of the file, gzip-decompressed when it starts with the gzip magic
    (as much as decompresses: a cut or damaged stream gives what came before the damage)."""
    with open(path, 'rb') as handle:
        head = handle.read(SNIFF_BYTES)
    if head[:2] != b'\x1f\x8b':
        return head
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return inflate.decompress(head, SNIFF_BYTES)
    except zlib.error:
        return b''


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _looks_like_xdatcar(lines: list[bytes]) -> bool:
    if len(lines) < 8:
        return False
    numbers = [lines[1].split()[:1], *(line.split()[:3] for line in lines[2:5])]
    return (
        all(
            len(row) == width and all(map(_is_number, row))
            for row, width in zip(numbers, (1, 3, 3, 3), strict=True)
        )
        and bool(lines[5].split())
        and not all(t.isdigit() for t in lines[5].split())
        and bool(lines[6].split())
        and all(t.isdigit() for t in lines[6].split())
        and b'configuration' in lines[7].lower()
    )


def _looks_like_extxyz(lines: list[bytes]) -> bool:
    return len(lines) >= 2 and lines[0].strip().isdigit() and b'lattice=' in lines[1].lower()


def sniff_format(path: str | Path) -> str | None:
    """Format from the file's content (its first bytes, gzip-decompressed), or None when unrecognised:
    zip magic: ``npz``; ``<modeling`` of an XML file: ``vasprun``; an XDATCAR header followed by
    ``... configuration=``: ``xdatcar``; an extended-XYZ header (atom count, ``Lattice=``): ``ase``."""
    head = _head(Path(path))
    if head.startswith((b'PK\x03\x04', b'PK\x05\x06')):
        return 'npz'
    text = head.lstrip(b'\xef\xbb\xbf \t\r\n')
    if text.startswith(b'<') and b'<modeling' in text:
        return 'vasprun'
    lines = text.splitlines()[:8]
    if _looks_like_xdatcar(lines):
        return 'xdatcar'
    if _looks_like_extxyz(lines):
        return 'ase'
    return None


def guess_format(path: Path) -> str:
    """Format from the content (:func:`sniff_format`), else from the name: ``*XDATCAR*``,
    ``*.xml[.gz]`` (vasprun), ``*.npz``; else ``ase``."""
    sniffed = sniff_format(path) if Path(path).is_file() else None
    if sniffed is not None:
        return sniffed
    name = path.name.lower()
    if 'xdatcar' in name:
        return 'xdatcar'
    if name.endswith(('.xml', '.xml.gz')):
        return 'vasprun'
    if name.endswith('.npz'):
        return 'npz'
    return 'ase'


def read_trajectory(
    path: str | Path,
    format: str | None = None,
    *,
    stride: int = 1,
    allow_truncated: bool = False,
    progress: Progress | None = None,
) -> Trajectory:
    """Read a trajectory file; ``format`` is one of :data:`FORMATS` (guessed from the name by default).

    Every failure is an :class:`~aiida_superionic.exceptions.InputError` with a one-line message.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f'no such trajectory file: {path}')
    fmt = format or guess_format(path)
    if fmt not in FORMATS:
        raise InputError(f'unknown trajectory format {fmt!r}; choose one of {", ".join(FORMATS)}')
    if stride < 1:
        raise InputError(f'stride must be >= 1, got {stride}')
    if fmt == 'xdatcar':
        traj = read_xdatcar(path, stride=stride, allow_truncated=allow_truncated, progress=progress)
    elif fmt == 'vasprun':
        traj = read_vasprun(path, stride=stride, progress=progress)
    elif fmt == 'npz':
        traj = read_npz(path, stride=stride)
    else:
        traj = read_ase(path, stride=stride)
    if not np.isfinite(np.sum(traj.positions, dtype=np.float64)):
        bad = int(np.argmax(~np.isfinite(traj.positions).all(axis=(1, 2))))
        raise TrajectoryFormatError(f'{path.name}: NaN or infinite position in frame {bad + 1}')
    return traj


def read_npz(path: str | Path, *, stride: int = 1) -> Trajectory:
    """``.npz`` with ``positions`` (n_frames, n_atoms, 3) Å, ``cell`` (3, 3) Å, ``symbols`` (n_atoms,)
    and optional ``velocities`` (Å/fs); other arrays (e.g. ``timestep_fs``, ``temperature_K``) go to
    ``metadata``."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise TrajectoryFormatError(f'{path.name}: not a readable .npz file ({exc})') from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise TrajectoryFormatError(
            f'{path.name}: not a readable .npz file (a single .npy array, not an archive)'
        )
    try:
        with data:
            positions, velocities, cell, symbols, extra = _npz_arrays(data, path, stride)
    except TrajectoryFormatError:
        raise
    except (OSError, ValueError, IndexError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # np.load reads the members lazily: a damaged member shows only here
        raise TrajectoryFormatError(
            f'{path.name}: damaged .npz file ({exception_name(exc)}: {exc})'
        ) from None
    if positions.ndim != 3 or positions.shape[1:] != (len(symbols), 3):
        raise TrajectoryFormatError(
            f'{path.name}: positions {positions.shape} do not match {len(symbols)} symbols as (n_frames, n_atoms, 3)'
        )
    if cell.shape != (3, 3):
        raise TrajectoryFormatError(f'{path.name}: cell must be 3x3, got {cell.shape}')
    meta = {'source': str(path), 'format': 'npz', 'stride': stride, **extra}
    return Trajectory(positions=positions, cell=cell, symbols=symbols, velocities=velocities, metadata=meta)


def _npz_arrays(data, path: Path, stride: int):
    missing = [k for k in ('positions', 'cell', 'symbols') if k not in data.files]
    if missing:
        raise TrajectoryFormatError(f'{path.name}: .npz lacks {", ".join(missing)}')
    positions = np.asarray(data['positions'][::stride], dtype=np.float32)
    velocities = (
        np.asarray(data['velocities'][::stride], dtype=np.float32) if 'velocities' in data.files else None
    )
    cell = np.asarray(data['cell'], dtype=float)
    symbols = [str(s) for s in np.atleast_1d(data['symbols'])]
    extra = {
        k: data[k].tolist() for k in data.files if k not in ('positions', 'velocities', 'cell', 'symbols')
    }
    return positions, velocities, cell, symbols, extra


def _vector_rows(
    varray: ElementTree.Element | None, n: int | None, what: str, step: int, path: Path
) -> np.ndarray:
    """The ``<v>`` rows of a ``<varray>`` as an (n, 3) array; a missing or malformed one is a format error."""
    where = f'{path.name}: ionic step {step + 1}'
    if varray is None:
        raise TrajectoryFormatError(f'{where} has no {what}')
    try:
        rows = np.array([[float(x) for x in (v.text or '').split()] for v in varray.iter('v')], dtype=float)
    except ValueError as exc:  # a non-number, or rows of unequal length
        raise TrajectoryFormatError(f'{where}: malformed {what} ({exc})') from None
    if rows.ndim != 2 or rows.shape[1] != 3 or (n is not None and rows.shape[0] != n):
        expected = f'{n} rows' if n is not None else 'rows'
        raise TrajectoryFormatError(
            f'{where}: {what} must be {expected} of 3 numbers, got shape {rows.shape}'
        )
    return rows


def read_vasprun(path: str | Path, *, stride: int = 1, progress: Progress | None = None) -> Trajectory:
    """Positions and lattice of every ionic step of a vasprun.xml, parsed incrementally.

    Each ``<calculation>`` element is cleared once read, so a multi-GB vasprun.xml never sits in memory
    as a tree. ``metadata`` carries POTIM (fs), NBLOCK and TEBEG when the file states them.
    """
    path = Path(path)
    with open(path, 'rb') as probe:
        opener = gzip.open if probe.read(2) == b'\x1f\x8b' else open
    size = path.stat().st_size
    symbols: list[str] = []
    params: dict[str, float] = {}
    frames: list[np.ndarray] = []
    cells: list[np.ndarray] = []
    step = 0
    try:
        with opener(path, 'rb') as handle:
            for _, elem in ElementTree.iterparse(handle, events=('end',)):
                if elem.tag == 'i' and elem.get('name') in ('POTIM', 'NBLOCK', 'TEBEG') and elem.text:
                    try:
                        params.setdefault(elem.get('name'), float(elem.text.split()[0]))
                    except (ValueError, IndexError):
                        raise TrajectoryFormatError(
                            f'{path.name}: {elem.get("name")} is not a number: {elem.text.strip()[:40]!r}'
                        ) from None
                elif elem.tag == 'array' and elem.get('name') == 'atoms':
                    symbols = [(rc.findtext('c') or '').strip() for rc in elem.iter('rc')]
                    if not all(symbols):
                        raise TrajectoryFormatError(f'{path.name}: an atom without its element in <atominfo>')
                    elem.clear()
                elif elem.tag == 'calculation':
                    structure = elem.find('structure')
                    if structure is not None:
                        if step % stride == 0:
                            basis = _vector_rows(
                                structure.find("crystal/varray[@name='basis']"),
                                3,
                                'lattice basis',
                                step,
                                path,
                            )
                            frac = _vector_rows(
                                structure.find("varray[@name='positions']"),
                                len(symbols) or None,
                                'positions',
                                step,
                                path,
                            )
                            cells.append(basis)
                            frames.append((frac @ basis).astype(np.float32))
                        step += 1
                    elem.clear()
                    if progress is not None and step % 100 == 0:
                        progress(min(1.0, handle.tell() / size) if opener is open else 0.0, f'{step} frames')
    except (EOFError, OSError, zlib.error) as exc:  # a damaged or cut gzip stream
        raise TrajectoryFormatError(
            f'{path.name}: cannot read the file ({exception_name(exc)}: {exc})'
        ) from None
    except ElementTree.ParseError as exc:
        if not frames:
            raise TrajectoryFormatError(f'{path.name}: not a readable vasprun.xml ({exc})') from None
        raise TrajectoryFormatError(
            f'{path.name}: vasprun.xml broken after {step} ionic steps ({exc}); a killed run? '
            'read its XDATCAR instead'
        ) from None
    if not frames or not symbols:
        raise TrajectoryFormatError(f'{path.name}: vasprun.xml without ionic steps')
    if any(not np.allclose(c, cells[0], atol=1e-6) for c in cells):
        raise TrajectoryFormatError(
            f'{path.name}: the cell changes between steps; only fixed-cell NVT runs are supported'
        )
    meta = {'source': str(path), 'format': 'vasprun', 'stride': stride, 'frames_in_file': step}
    meta.update({'potim_fs': params['POTIM']} if 'POTIM' in params else {})
    meta.update({'nblock': int(params['NBLOCK'])} if 'NBLOCK' in params else {})
    meta.update({'tebeg_K': params['TEBEG']} if 'TEBEG' in params else {})
    return Trajectory(positions=np.stack(frames), cell=cells[0], symbols=symbols, metadata=meta)


def read_ase(path: str | Path, *, stride: int = 1) -> Trajectory:
    """Any format ``ase.io`` reads (extxyz, ASE .traj, LAMMPS dump, ...). Velocities are kept when the
    frames carry momenta (converted from ASE units to Å/fs)."""
    import ase.io
    from ase import units

    path = Path(path)
    # ase.io guesses the format from the name; an extended-XYZ file under another name is told by content
    ase_format = 'extxyz' if path.is_file() and _looks_like_extxyz(_head(path).splitlines()[:2]) else None
    try:
        images = ase.io.read(path, index=f'::{stride}', format=ase_format)
    except Exception as exc:  # ase raises many types for unreadable files
        raise TrajectoryFormatError(
            f'{path.name}: ase.io cannot read it ({type(exc).__name__}: {exc})'
        ) from None
    if not isinstance(images, list):
        images = [images]
    if not images:
        raise TrajectoryFormatError(f'{path.name}: no frames')
    first = images[0]
    symbols = first.get_chemical_symbols()
    cell = np.array(first.cell[:])
    if abs(np.linalg.det(cell)) < 1e-6:
        raise TrajectoryFormatError(f'{path.name}: frames have no periodic cell')
    for k, atoms in enumerate(images):
        if atoms.get_chemical_symbols() != symbols:
            raise TrajectoryFormatError(f'{path.name}: frame {k + 1} has different atoms than frame 1')
        if not np.allclose(atoms.cell[:], cell, atol=1e-6):
            raise TrajectoryFormatError(
                f'{path.name}: the cell changes at frame {k + 1}; only NVT runs are supported'
            )
    positions = np.stack([a.get_positions() for a in images]).astype(np.float32)
    velocities = None
    if all(a.has('momenta') for a in images):
        velocities = (np.stack([a.get_velocities() for a in images]) * units.fs).astype(np.float32)
    meta = {'source': str(path), 'format': 'ase', 'stride': stride}
    return Trajectory(positions=positions, cell=cell, symbols=symbols, velocities=velocities, metadata=meta)

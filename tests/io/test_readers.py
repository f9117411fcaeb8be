"""Trajectory readers on real VASP files, compared with pymatgen/ASE reading the same files."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from aiida_superionic.exceptions import InputError, TrajectoryFormatError
from aiida_superionic.io import Trajectory, guess_format, read_trajectory, read_vasprun, read_xdatcar


@pytest.fixture(scope='module')
def argyrodite_plain(tmp_path_factory, shared_md):
    """The real Li6PS5Cl XDATCAR, decompressed."""
    path = tmp_path_factory.mktemp('xdatcar') / 'XDATCAR'
    with gzip.open(shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz', 'rb') as src, open(path, 'wb') as dst:
        shutil.copyfileobj(src, dst)
    return path


def test_xdatcar_matches_pymatgen(argyrodite_plain):
    from pymatgen.io.vasp.outputs import Xdatcar

    traj = read_xdatcar(argyrodite_plain)
    reference = Xdatcar(str(argyrodite_plain))
    assert traj.positions.shape == (len(reference.structures), 416, 3) == (140, 416, 3)
    assert traj.positions.dtype == np.float32
    assert traj.symbols == [site.specie.symbol for site in reference.structures[0]]
    assert {s: traj.symbols.count(s) for s in traj.species} == {'Li': 192, 'Cl': 32, 'S': 160, 'P': 32}
    np.testing.assert_allclose(traj.cell, reference.structures[0].lattice.matrix, atol=1e-9)
    for k in (0, 77, 139):
        np.testing.assert_allclose(traj.positions[k], reference.structures[k].cart_coords, atol=2e-5)


def test_gzip_plain_and_stride(argyrodite_plain, shared_md):
    plain = read_xdatcar(argyrodite_plain)
    packed = read_xdatcar(shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz')
    np.testing.assert_array_equal(plain.positions, packed.positions)
    strided = read_trajectory(argyrodite_plain, stride=3)
    np.testing.assert_array_equal(strided.positions, plain.positions[::3])
    assert strided.metadata['frames_in_file'] == 140


def test_small_batches_give_the_same_frames(argyrodite_plain, monkeypatch):
    """Frames that straddle batch boundaries are stitched correctly."""
    from aiida_superionic.io import xdatcar

    whole = read_xdatcar(argyrodite_plain)
    monkeypatch.setattr(xdatcar, 'BATCH_BYTES', 7777)
    np.testing.assert_array_equal(read_xdatcar(argyrodite_plain).positions, whole.positions)


def test_llzo_xdatcar_with_incar(shared_md):
    traj = read_trajectory(shared_md / 'LLZO_IonDiff' / 'XDATCAR')
    assert traj.n_frames == 2
    assert {s: traj.symbols.count(s) for s in traj.species} == {'Li': 110, 'La': 48, 'Zr': 32, 'O': 192}
    np.testing.assert_allclose(np.diag(traj.cell), [13.2, 13.2, 25.3])


def test_truncated_xdatcar(argyrodite_plain, tmp_path):
    lines = argyrodite_plain.read_bytes().splitlines(keepends=True)
    cut = tmp_path / 'XDATCAR'
    n_keep = 7 + 10 * 417 + 1 + 200  # header + 10 frames + half of frame 11
    cut.write_bytes(b''.join(lines[:n_keep]))
    with pytest.raises(
        TrajectoryFormatError, match='truncated frame 11: expected 416 coordinate lines, found 200'
    ):
        read_xdatcar(cut)
    assert read_xdatcar(cut, allow_truncated=True).n_frames == 10


def test_nan_and_garbage_in_xdatcar(argyrodite_plain, tmp_path):
    lines = argyrodite_plain.read_bytes().splitlines(keepends=True)
    bad = list(lines[: 7 + 20 * 417])
    bad[7 + 5 * 417 + 3] = b'  0.1  NaN  0.3\n'
    path = tmp_path / 'XDATCAR'
    path.write_bytes(b''.join(bad))
    with pytest.raises(TrajectoryFormatError, match='NaN or infinite coordinate in frame 6'):
        read_xdatcar(path)
    for broken in (b'  0.1  0.2\n', b'  0.1  abc  0.3\n'):
        bad[7 + 5 * 417 + 3] = broken
        path.write_bytes(b''.join(bad))
        with pytest.raises(TrajectoryFormatError, match='malformed coordinates'):
            read_xdatcar(path)
    path.write_bytes(b'hello\nthis is not\na trajectory\n')
    with pytest.raises(TrajectoryFormatError, match='not an XDATCAR'):
        read_xdatcar(path)


def test_variable_cell_xdatcar_is_refused(argyrodite_plain, tmp_path):
    lines = argyrodite_plain.read_bytes().splitlines(keepends=True)
    header, frame = lines[:7], lines[7 : 7 + 417]
    path = tmp_path / 'XDATCAR'
    path.write_bytes(b''.join(header + frame + header + frame))  # NpT style: header before each frame
    with pytest.raises(TrajectoryFormatError, match='variable-cell'):
        read_xdatcar(path)


def test_vasprun_matches_pymatgen(data_dir):
    from pymatgen.io.vasp.outputs import Vasprun

    path = data_dir / 'aiida-vasp' / 'vasprun_relax_isif2.xml'
    traj = read_vasprun(path)
    reference = Vasprun(str(path), parse_dos=False, parse_eigen=False, parse_potcar_file=False)
    assert traj.n_frames == len(reference.ionic_steps) == 5
    for k, step in enumerate(reference.ionic_steps):
        np.testing.assert_allclose(traj.positions[k], step['structure'].cart_coords, atol=1e-5)
    assert traj.symbols == [s.specie.symbol for s in reference.final_structure]
    assert traj.metadata['potim_fs'] == pytest.approx(reference.parameters['POTIM'])


def test_vasprun_broken_and_variable_cell(data_dir):
    with pytest.raises(TrajectoryFormatError, match=r'not a readable vasprun\.xml'):
        read_vasprun(data_dir / 'aiida-vasp' / 'vasprun_unfinished.xml')
    with pytest.raises(TrajectoryFormatError, match='the cell changes'):
        read_vasprun(data_dir / 'aiida-vasp' / 'vasprun_relax_isif3.xml')


def test_npz_round_trip(tmp_path, rng):
    traj = Trajectory(
        positions=rng.uniform(0, 5, (20, 3, 3)).astype(np.float32),
        cell=np.eye(3) * 5,
        symbols=['Li', 'Li', 'O'],
        velocities=rng.normal(size=(20, 3, 3)).astype(np.float32),
    )
    path = traj.to_npz(tmp_path / 'run.npz', timestep_fs=1.5)
    back = read_trajectory(path)
    np.testing.assert_array_equal(back.positions, traj.positions)
    np.testing.assert_array_equal(back.velocities, traj.velocities)
    assert back.symbols == traj.symbols
    assert back.metadata['timestep_fs'] == 1.5


def test_ase_extxyz_with_velocities(tmp_path, rng):
    """Velocities written by ASE come back in Å/fs."""
    import ase.io
    from ase import Atoms, units

    frames = []
    v = rng.normal(scale=0.01, size=(4, 2, 3))  # Å/fs
    for k in range(4):
        atoms = Atoms('LiF', positions=rng.uniform(0, 4, (2, 3)), cell=np.eye(3) * 4, pbc=True)
        atoms.set_velocities(v[k] / units.fs)
        frames.append(atoms)
    path = tmp_path / 'run.extxyz'
    ase.io.write(path, frames)
    traj = read_trajectory(path)
    assert traj.symbols == ['Li', 'F']
    np.testing.assert_allclose(traj.velocities, v, rtol=1e-5)
    np.testing.assert_allclose(traj.positions, [a.positions for a in frames], atol=1e-5)


def test_reader_errors(tmp_path):
    with pytest.raises(InputError, match='no such trajectory file'):
        read_trajectory(tmp_path / 'missing.xyz')
    junk = tmp_path / 'junk.npz'
    junk.write_bytes(b'not a zip')
    with pytest.raises(TrajectoryFormatError, match=r'not a readable \.npz'):
        read_trajectory(junk)
    odd = tmp_path / 'data.weird'
    odd.write_text('1 2 3\n')
    with pytest.raises(TrajectoryFormatError, match=r'ase\.io cannot read it'):
        read_trajectory(odd)
    with pytest.raises(InputError, match='unknown trajectory format'):
        read_trajectory(odd, format='lammps')


def test_truncated_gzip_is_a_format_error(shared_md, tmp_path):
    data = (shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz').read_bytes()
    cut = tmp_path / 'XDATCAR.gz'
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrajectoryFormatError, match=r'XDATCAR\.gz: cannot read the file'):
        read_trajectory(cut)


def test_cut_npz_is_a_format_error(tmp_path, rng):
    """The user's case: an .npz cut at 5,000 bytes leaked zipfile.BadZipFile (a 48-line traceback)."""
    traj = Trajectory(
        positions=rng.uniform(0, 5, (200, 16, 3)).astype(np.float32), cell=np.eye(3) * 5, symbols=['Li'] * 16
    )
    data = traj.to_npz(tmp_path / 'full.npz').read_bytes()
    assert len(data) > 5000
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(data[:5000])
    with pytest.raises(TrajectoryFormatError, match=r'bad\.npz: not a readable \.npz file'):
        read_trajectory(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the compressed positions: the archive opens, the member fails
    bad.write_bytes(bytes(flipped))
    with pytest.raises(TrajectoryFormatError, match=r'bad\.npz: damaged \.npz file'):
        read_trajectory(bad)


def test_format_is_sniffed_from_the_content(shared_md, tmp_path):
    """A compressed XDATCAR named x2.gz was 'Could not guess file type'; the content says what it is."""
    source = shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz'
    anonymous = tmp_path / 'x2.gz'
    anonymous.write_bytes(source.read_bytes())
    assert guess_format(anonymous) == 'xdatcar'
    np.testing.assert_array_equal(read_trajectory(anonymous).positions, read_trajectory(source).positions)
    plain = tmp_path / 'run.dat'
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    assert guess_format(plain) == 'xdatcar'
    assert guess_format(shared_md / 'LLZO_IonDiff' / 'XDATCAR') == 'xdatcar'
    npz = Trajectory(positions=np.zeros((2, 1, 3), np.float32), cell=np.eye(3), symbols=['Li']).to_npz(
        tmp_path / 'a.npz'
    )
    renamed = tmp_path / 'a.bin'
    renamed.write_bytes(npz.read_bytes())
    assert guess_format(renamed) == 'npz'
    # no content clue (empty, or junk): the name decides, so the reader's message stays the specific one
    empty = tmp_path / 'XDATCAR'
    empty.write_bytes(b'')
    assert guess_format(empty) == 'xdatcar'
    junk = tmp_path / 'junk.npz'
    junk.write_bytes(b'not a zip')
    assert guess_format(junk) == 'npz'

"""CHGNet crystal graphs built with torch ops (:mod:`aiida_superionic.engines.mlip.graphs`) against CHGNet's own
``CrystalGraphConverter`` (pymatgen neighbour list + CHGNet's C graph code), the independent reference.

For each structure: the same directed atom-graph edges (as a multiset of (i, j, image)), a consistent pairing
of directed and undirected edges, the same bond-graph triplets (as (centre, edge, edge) through the edges),
the same metadata and dtypes, and the model's energy, forces and stress from ``predict_graph`` on our graph
equal to those on CHGNet's graph.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytest.importorskip('chgnet')

import torch
from ase import Atoms
from ase.build import bulk

from aiida_superionic.engines.mlip.graphs import crystal_graph, crystal_graphs


@pytest.fixture(scope='module')
def model():
    from aiida_superionic.engines.mlip.models import _load_chgnet

    return _load_chgnet('0.3.0', 'cpu')


def lif_supercell():
    return bulk('LiF', 'rocksalt', a=4.07, cubic=True).repeat(2)  # 64 atoms


def li3n():
    """Li3N (P6/mmm, a = 3.648, c = 3.875 Å): 4 atoms, c and a below the 6 Å cutoff (own images)."""
    a, c = 3.648, 3.875
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]]
    frac = [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]]
    return Atoms('NLi3', scaled_positions=frac, cell=cell, pbc=True)


def triclinic():
    """LiF 8-atom cell under a general (non-symmetric) strain, atoms rattled: no symmetry left."""
    atoms = bulk('LiF', 'rocksalt', a=4.07, cubic=True)
    strain = np.array([[1.04, 0.07, -0.05], [0.02, 0.97, 0.09], [-0.06, 0.04, 1.08]])
    atoms.set_cell(np.asarray(atoms.cell) @ strain, scale_atoms=True)
    atoms.rattle(0.08, seed=11)
    return atoms


def li_bcc_primitive():
    """One atom in a 3.44 Å bcc primitive cell: every edge joins the atom to one of its own images."""
    return bulk('Li', 'bcc', a=3.44)


def lif_vacancy():
    atoms = lif_supercell()
    del atoms[5]
    return atoms


def lif_md_noise():
    """MD-like: rattled by 0.15 Å and unwrapped (atoms moved out of the cell by whole lattice vectors)."""
    atoms = lif_supercell()
    atoms.rattle(0.15, seed=5)
    positions = atoms.get_positions()
    cell = np.asarray(atoms.cell)
    positions[::3] += cell[0] - 2 * cell[2]
    positions[1::5] -= cell[1]
    atoms.set_positions(positions)
    return atoms


STRUCTURES = {
    'LiF_64': lif_supercell,
    'Li3N': li3n,
    'triclinic': triclinic,
    'Li_self_images': li_bcc_primitive,
    'LiF_vacancy': lif_vacancy,
    'LiF_md_noise': lif_md_noise,
}


def chgnet_graph(model, atoms):
    from pymatgen.core import Lattice, Structure

    structure = Structure(
        Lattice(np.asarray(atoms.cell)), atoms.numbers, atoms.positions, coords_are_cartesian=True
    )
    return model.graph_converter(structure)


def torch_graph(model, atoms):
    converter = model.graph_converter
    return crystal_graph(
        torch.tensor(atoms.positions),
        torch.tensor(np.asarray(atoms.cell)),
        torch.tensor(atoms.numbers),
        atom_graph_cutoff=converter.atom_graph_cutoff,
        bond_graph_cutoff=converter.bond_graph_cutoff,
    )


def edge_keys(graph) -> list[tuple]:
    images = graph.neighbor_image.detach().numpy()
    assert np.array_equal(images, np.round(images))
    return [
        (int(i), int(j), *map(int, img))
        for (i, j), img in zip(graph.atom_graph.numpy(), np.round(images).astype(int), strict=True)
    ]


def triplets(graph) -> Counter:
    keys = edge_keys(graph)
    return Counter((int(row[0]), keys[int(row[2])], keys[int(row[4])]) for row in graph.bond_graph.numpy())


def check_internal_consistency(graph) -> None:
    """What CHGNet's graph guarantees: each undirected edge = one directed edge and its reverse, the first of
    them named by undirected2directed; bond-graph rows name the undirected edges of their directed edges."""
    keys = edge_keys(graph)
    d2u = graph.directed2undirected.numpy()
    u2d = graph.undirected2directed.numpy()
    assert len(d2u) == 2 * len(u2d)
    members: dict[int, list[int]] = {}
    for e, u in enumerate(d2u):
        members.setdefault(int(u), []).append(e)
    assert sorted(members) == list(range(len(u2d)))
    for u, (e1, e2) in ((u, m) for u, m in members.items() if len(m) == 2):
        i, j, *n = keys[e1]
        assert keys[e2] == (j, i, *(-x for x in n))
        assert u2d[u] == e1  # the first directed edge, as in CHGNet
    assert all(len(m) == 2 for m in members.values())
    bond_graph = graph.bond_graph.numpy()
    if len(bond_graph):
        assert np.array_equal(bond_graph[:, 1], d2u[bond_graph[:, 2]])
        assert np.array_equal(bond_graph[:, 3], d2u[bond_graph[:, 4]])
        sources = graph.atom_graph.numpy()[:, 0]
        assert np.array_equal(bond_graph[:, 0], sources[bond_graph[:, 2]])
        assert np.array_equal(bond_graph[:, 0], sources[bond_graph[:, 4]])
        assert not np.any(bond_graph[:, 2] == bond_graph[:, 4])


def assert_same_graph(ours, theirs) -> None:
    assert Counter(edge_keys(ours)) == Counter(edge_keys(theirs))
    assert len(set(edge_keys(ours))) == len(edge_keys(ours))  # no edge twice
    assert len(ours.undirected2directed) == len(theirs.undirected2directed)
    assert triplets(ours) == triplets(theirs)
    assert len(ours.bond_graph) == len(theirs.bond_graph)
    check_internal_consistency(ours)
    check_internal_consistency(theirs)
    np.testing.assert_array_equal(ours.atomic_number.numpy(), theirs.atomic_number.numpy())
    np.testing.assert_allclose(ours.atom_frac_coord.detach(), theirs.atom_frac_coord.detach(), atol=1e-6)
    np.testing.assert_allclose(ours.lattice.detach(), theirs.lattice.detach(), atol=1e-6)
    for name in (
        'atomic_number',
        'atom_frac_coord',
        'atom_graph',
        'neighbor_image',
        'directed2undirected',
        'undirected2directed',
        'bond_graph',
        'lattice',
    ):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a.dtype, a.requires_grad) == (b.dtype, b.requires_grad), name
        if a.numel() == 0 or b.numel() == 0:
            assert a.shape == b.shape or (a.numel() == b.numel() == 0), name
    for name in ('composition', 'graph_id', 'mp_id', 'atom_graph_cutoff', 'bond_graph_cutoff'):
        assert getattr(ours, name) == getattr(theirs, name), name


def assert_same_prediction(model, ours, theirs) -> None:
    a = model.predict_graph(ours, task='efs')
    b = model.predict_graph(theirs, task='efs')
    np.testing.assert_allclose(a['e'], b['e'], atol=1e-5, rtol=0)  # eV/atom
    np.testing.assert_allclose(a['f'], b['f'], atol=1e-4, rtol=0)  # eV/Å
    np.testing.assert_allclose(a['s'], b['s'], atol=1e-3, rtol=0)  # GPa


@pytest.mark.parametrize('name', list(STRUCTURES))
def test_graph_equals_chgnet_converter(model, name):
    atoms = STRUCTURES[name]()
    theirs = chgnet_graph(model, atoms)
    ours = torch_graph(model, atoms)
    assert len(ours.atom_graph) > 0 and len(ours.bond_graph) > 0
    assert_same_graph(ours, theirs)
    assert_same_prediction(model, ours, theirs)


def test_self_image_cell_has_self_edges_and_their_angle(model):
    """The one-atom cell: all edges are 0 -> 0 (+n), paired with 0 -> 0 (-n); the bond graph holds the pair
    of a short bond's own two directed edges (both leave atom 0), as CHGNet's does."""
    ours = torch_graph(model, li_bcc_primitive())
    keys = edge_keys(ours)
    assert all(i == j == 0 for i, j, *_ in keys)
    d2u = ours.directed2undirected.numpy()
    own_pair = [row for row in ours.bond_graph.numpy() if d2u[row[2]] == d2u[row[4]]]
    assert own_pair  # 8 nearest neighbours at 2.98 Å < 3 Å: each bond with its reverse


def _one_atom_cubic(a: float) -> Atoms:
    return Atoms('Li', positions=[[0, 0, 0]], cell=np.eye(3) * a, pbc=True)


def _pair_cubic(a: float, x: float) -> Atoms:
    return Atoms('LiF', positions=[[0, 0, 0], [x, 0, 0]], cell=np.eye(3) * a, pbc=True)


@pytest.mark.parametrize(
    ('atoms', 'n_first_shell'),
    [
        # atom cutoff 6 Å: pymatgen keeps d^2 < r^2 + 1e-8, i.e. d < 6 + 8.3e-10
        (_one_atom_cubic(6.0), 6),  # the 6 neighbours exactly at the cutoff are in
        (_one_atom_cubic(6.0 + 5e-10), 6),  # just inside pymatgen's tolerance: in
        (_one_atom_cubic(6.0 + 2e-9), 0),  # just outside it: out
        # bond cutoff 3 Å: the first bond of an angle needs d <= 3, the second d < 3 (CHGNet's two tests)
        (_one_atom_cubic(3.0), 6),
        (_one_atom_cubic(3.0 - 1e-12), 6),
        (_one_atom_cubic(3.0 + 1e-12), 6),
        (_pair_cubic(6.0, 3.0), None),  # Li-F bond of exactly 3 Å between two atoms
        (_pair_cubic(6.0, 3.0 - 1e-9), None),
    ],
    ids=['a=6', 'a=6+5e-10', 'a=6+2e-9', 'a=3', 'a=3-1e-12', 'a=3+1e-12', 'pair_3', 'pair_3-1e-9'],
)
def test_distances_at_the_cutoffs(model, atoms, n_first_shell):
    theirs = chgnet_graph(model, atoms) if n_first_shell != 0 else None
    converter = model.graph_converter
    if n_first_shell == 0:  # no neighbour at all within 6 Å: isolated, an error for both
        with pytest.raises(ValueError, match='isolated atom'):
            chgnet_graph(model, atoms)
        with pytest.raises(ValueError, match='isolated atom'):
            torch_graph(model, atoms)
        return
    ours = torch_graph(model, atoms)
    if n_first_shell is not None:
        a = float(atoms.cell[0, 0])
        distances = np.linalg.norm(ours.neighbor_image.numpy() @ np.asarray(atoms.cell), axis=1)
        assert np.sum(np.isclose(distances, a, atol=1e-6)) == n_first_shell
    assert converter.bond_graph_cutoff == 3 and converter.atom_graph_cutoff == 6
    assert_same_graph(ours, theirs)
    if len(ours.bond_graph) or len(theirs.bond_graph):
        assert_same_prediction(model, ours, theirs)


def test_bond_exactly_at_bond_cutoff_is_first_but_never_second(model):
    """Simple cubic a = 3 Å: the 6 bonds at exactly 3 Å pass ``<= 3`` but fail ``< 3``, so no angle at all."""
    ours = torch_graph(model, _one_atom_cubic(3.0))
    assert len(ours.bond_graph) == 0
    ours = torch_graph(model, _one_atom_cubic(3.0 - 1e-12))
    assert len(ours.bond_graph) == 6 * 5


def test_isolated_atom_settings(model):
    atoms = Atoms('Li2', positions=[[0, 0, 0], [10, 10, 10]], cell=np.eye(3) * 20, pbc=True)
    with pytest.raises(ValueError, match='2 isolated atom'):
        torch_graph(model, atoms)
    graph = crystal_graph(
        torch.tensor(atoms.positions),
        torch.tensor(np.asarray(atoms.cell)),
        torch.tensor(atoms.numbers),
        atom_graph_cutoff=6.0,
        bond_graph_cutoff=3.0,
        on_isolated_atoms='ignore',
    )
    assert graph.atom_graph.shape == (0, 2) and graph.bond_graph.shape == (0, 5)


def test_crystal_graphs_batch_with_model_cutoffs(model):
    """The md_batch entry point: several (cell, numbers, positions), the model's cutoffs and device."""
    systems = [(a.cell, a.numbers, a.positions) for a in (li3n(), lif_vacancy())]
    graphs = crystal_graphs(systems, model)
    assert [g.composition for g in graphs] == ['Li3 N1', 'Li32 F31']  # atom 5 of LiF_64 is an F
    assert all(g.atom_graph_cutoff == 6 and g.bond_graph_cutoff == 3 for g in graphs)
    batched = model.predict_graph(graphs, task='ef', batch_size=2)
    references = [chgnet_graph(model, a) for a in (li3n(), lif_vacancy())]
    assert [g.composition for g in references] == [g.composition for g in graphs]
    single = [model.predict_graph(g, task='ef') for g in references]
    for a, b in zip(batched, single, strict=True):
        np.testing.assert_allclose(a['e'], b['e'], atol=1e-5)
        np.testing.assert_allclose(a['f'], b['f'], atol=1e-4)


def test_chunked_search_gives_the_same_graph(model, monkeypatch):
    """The all-pairs search in many chunks of centre atoms (as for large cells) finds the same graph."""
    from aiida_superionic.engines.mlip import graphs

    atoms = lif_md_noise()
    whole = torch_graph(model, atoms)
    monkeypatch.setattr(graphs, '_CHUNK_PAIRS_CPU', 5000)  # 64 atoms x 27 images: 2 centres per chunk
    chunked = torch_graph(model, atoms)
    for name in ('atom_graph', 'neighbor_image', 'directed2undirected', 'undirected2directed', 'bond_graph'):
        assert torch.equal(getattr(whole, name), getattr(chunked, name)), name
    assert_same_graph(chunked, chgnet_graph(model, atoms))


# Cells large enough for the cell-list neighbour search (3+ bins of one 6 Å cutoff along each lattice vector)
def lif_1000_rattled():
    atoms = bulk('LiF', 'rocksalt', a=4.07, cubic=True).repeat(5)
    atoms.rattle(0.12, seed=3)
    return atoms


def triclinic_1000():
    """LiF 5x5x5 conventional under a general strain, rattled and partly unwrapped: no symmetry left."""
    atoms = bulk('LiF', 'rocksalt', a=4.07, cubic=True).repeat(5)
    strain = np.array([[1.02, 0.05, -0.03], [0.01, 1.0, 0.04], [-0.03, 0.02, 1.01]])
    atoms.set_cell(np.asarray(atoms.cell) @ strain, scale_atoms=True)
    atoms.rattle(0.08, seed=12)
    positions = atoms.get_positions()
    positions[::7] += np.asarray(atoms.cell)[1] - np.asarray(atoms.cell)[2]
    atoms.set_positions(positions)
    return atoms


def lif_vacancies():
    atoms = lif_1000_rattled()
    del atoms[[0, 77, 300]]
    return atoms


def simple_cubic_at_the_cutoff(a: float) -> Atoms:
    """Li on a simple cubic lattice of spacing ``a``, 4x4x4 (64 atoms): at 6 Å each atom's 6 nearest
    neighbours sit exactly on the 6 Å cutoff, and the bins of the cell list are one cutoff wide."""
    return Atoms('Li', positions=[[0, 0, 0]], cell=np.eye(3) * a, pbc=True).repeat(4)


LARGE = {
    'LiF_1000_rattled': lif_1000_rattled,
    'triclinic_1000': triclinic_1000,
    'LiF_997_vacancies': lif_vacancies,
}


def _neighbors(atoms, method):
    from aiida_superionic.engines.mlip.graphs import neighbor_list

    return neighbor_list(torch.tensor(atoms.positions), torch.tensor(np.asarray(atoms.cell)), 6.0, method)


@pytest.mark.parametrize('name', list(LARGE))
def test_cell_list_search_equals_all_pairs_and_chgnet_converter(model, name):
    """On cells where the size rule takes the cell list: exactly the edges of the all-pairs search (same order,
    images and bit-identical distances), and the graph of CHGNet's own converter."""
    from aiida_superionic.engines.mlip.graphs import choose_neighbor_method

    atoms = LARGE[name]()
    cell = torch.tensor(np.asarray(atoms.cell))
    assert choose_neighbor_method(cell, 6.0, len(atoms)) == 'cell_list'
    cell_list, all_pairs = _neighbors(atoms, 'cell_list'), _neighbors(atoms, 'all_pairs')
    for a, b in zip(cell_list, all_pairs, strict=True):
        assert torch.equal(a, b)
    distance = cell_list[3]
    assert float(distance.max()) > 5.95  # edges close to the cutoff are among them
    assert_same_graph(torch_graph(model, atoms), chgnet_graph(model, atoms))


@pytest.mark.parametrize(('a', 'n_at_cutoff'), [(6.0, 6), (6.0 + 5e-10, 6), (6.0 - 1e-9, 6)])
def test_cell_list_search_keeps_pymatgens_cutoff_test(model, a, n_at_cutoff):
    """Neighbours exactly at, just inside and just below pymatgen's d^2 < r^2 + 1e-8 (the cell list forced on
    a 64-atom cell of bins exactly one cutoff wide): the edges of the all-pairs search and of CHGNet."""
    atoms = simple_cubic_at_the_cutoff(a)
    cell_list, all_pairs = _neighbors(atoms, 'cell_list'), _neighbors(atoms, 'all_pairs')
    for x, y in zip(cell_list, all_pairs, strict=True):
        assert torch.equal(x, y)
    center, distance = cell_list[0], cell_list[3]
    assert int((np.isclose(distance.numpy(), a, atol=1e-6) & (center.numpy() == 0)).sum()) == n_at_cutoff
    theirs = chgnet_graph(model, atoms)
    assert Counter(edge_keys(theirs)) == Counter(
        (int(i), int(j), *map(int, n))
        for i, j, n in zip(cell_list[0], cell_list[1], cell_list[2], strict=True)
    )


@pytest.mark.parametrize('name', list(STRUCTURES))
def test_cell_list_forced_on_small_and_thin_cells_is_still_exact(name):
    """The size rule keeps all pairs for these cells (few atoms, or thinner than the cutoff: their one bin is
    the cell and its images); forced, the cell list still gives exactly the same edges."""
    from aiida_superionic.engines.mlip.graphs import choose_neighbor_method

    atoms = STRUCTURES[name]()
    assert choose_neighbor_method(torch.tensor(np.asarray(atoms.cell)), 6.0, len(atoms)) == 'all_pairs'
    for a, b in zip(_neighbors(atoms, 'cell_list'), _neighbors(atoms, 'all_pairs'), strict=True):
        assert torch.equal(a, b)

"""CHGNet crystal graphs built with torch operations on the model's device.

:func:`crystal_graph` makes the :class:`chgnet.graph.CrystalGraph` that CHGNet's own
``CrystalGraphConverter`` (chgnet 0.4.2 with the 0.3.0 weights, as installed) makes for the same structure (same edges, images, pairing of directed edges and
angle triplets; only the order of the edges differs), from torch tensors, with no pymatgen ``Structure``, no
``get_neighbor_list`` and no Python loop over atoms or edges. Everything runs on the device of the inputs
(the GPU in production), so that the MD step of task ``md_batch`` stays on the device.

Conventions matched (``chgnet/graph/converter.py``, ``graph.py``, ``cygraph.pyx`` and pymatgen's
``find_points_in_spheres``):

* atom graph: every directed edge ``i -> j + image`` with ``d^2 < r_atom^2 + 1e-8`` (pymatgen's test on the
  squared distance, ``numerical_tol = 1e-8``), except an atom with itself at distance ``<= 1e-8``; an atom
  sees its own periodic images. ``neighbor_image`` refers to the *unwrapped* fractional coordinates that are
  stored in ``atom_frac_coord`` (the neighbour sits at ``frac[j] + image``).
* undirected edges: the two directed edges ``i -> j (+n)`` and ``j -> i (-n)`` form one undirected edge. As
  in CHGNet, the undirected edges are numbered in the order of their first directed edge, and
  ``undirected2directed`` names that first directed edge.
* bond graph (CHGNet's ``line_graph_adjacency_list``): for every directed edge ``e1`` whose (undirected)
  length is ``<= r_bond`` and every *other* directed edge ``e2`` leaving the same atom with length
  ``< r_bond`` (strict), one row ``[center, u(e1), e1, u(e2), e2]``. For a self-image bond this includes the
  pair of its own two directed edges (both leave the same atom), as in CHGNet.
* dtypes: ``int32`` indices, ``float32`` coordinates, lattice and images; ``atom_frac_coord`` and ``lattice``
  require grad (CHGNet differentiates through them for forces and stress).

Two neighbour searches give the same edges, in the same order, with bit-identical distances
(:func:`neighbor_list`). *All pairs* over the periodic images that can lie within the cutoff
(``ceil(r |b_k|)`` images each way along lattice vector ``k``), vectorised and chunked over centre atoms to
bound the memory: candidates come from ``|d|^2 + 2 d.s + |s|^2`` (one matrix product) with a margin. O(N^2
x images) work: right for small cells and cells thinner than the cutoff. A *cell list* for large cells: the
cell is cut into bins at least a cutoff thick along each lattice vector (triclinic cells: the distance
between lattice planes), and each atom is tried against the atoms of the bins around its own, periodic
images included: O(N) work. :func:`choose_neighbor_method` picks one by a size rule (cell list from
:data:`CELL_LIST_MIN_ATOMS` atoms when its bins leave at most 1/20 of the all-pairs candidates). In both, every
candidate's distance is computed in float64 with the same elementwise operations, so that the two directions
of one bond have bit-identical lengths (the pairing and the cutoff tests never disagree between them) and
the two searches agree bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = (
    'choose_neighbor_method',
    'composition_formula',
    'crystal_graph',
    'crystal_graphs',
    'neighbor_list',
)

#: pymatgen's ``numerical_tol`` as ``get_neighbor_list`` passes it (CHGNet's converter uses 1e-8)
NUMERICAL_TOL = 1e-8
#: at most this many (centre, neighbour, image) candidates per chunk of the all-pairs search: large chunks on a
#: GPU (few kernel launches), cache-sized ones on a CPU (seen ~2x faster there for 216 atoms)
_CHUNK_PAIRS = 1 << 22
_CHUNK_PAIRS_CPU = 1 << 18
#: at most about this many candidates per chunk of the cell-list search (each holds ~20 numbers in flight)
_CHUNK_CELL_LIST = 1 << 16


def composition_formula(numbers) -> str:
    """``structure.composition.formula`` of pymatgen for these atomic numbers (the graph's ``composition``).
    Metadata only (CHGNet does not read it); compute it once per structure, not per MD step."""
    from pymatgen.core import Composition, Element

    counts: dict = {}
    for z in (int(x) for x in numbers):
        counts[z] = counts.get(z, 0) + 1
    return Composition({Element.from_Z(z): n for z, n in counts.items()}).formula


def _image_range(cell: torch.Tensor, cutoff: float) -> list[int]:
    """Images needed each way along each lattice vector: the planes of lattice vector k are 1 / |b_k| apart
    (b = the rows of inv(cell)^T), wrapped fractional differences lie in (-1, 1), so a neighbour within the
    cutoff has |n_k| < r |b_k| + 1, i.e. |n_k| <= ceil(r |b_k|) (a 1e-6 margin against rounding)."""
    reciprocal_norms = torch.linalg.inv(cell).norm(dim=0)  # |b_k|: column k of inv(cell) is b_k
    return [math.ceil(cutoff * float(b) + 1e-6) for b in reciprocal_norms.cpu()]


def _cell_list_bins(cell: torch.Tensor, cutoff: float) -> tuple[list[int], list[int]]:
    """Bins per lattice vector of the cell-list search, and how many bins each way hold the neighbours.

    Along lattice vector k the cell is ``h_k = 1 / |b_k|`` thick (the distance between its lattice planes);
    it is cut into ``n_k = max(1, floor(h_k / r))`` slabs (r: the cutoff with pymatgen's tolerance and a
    margin). A neighbour within r differs from its centre by less than ``r |b_k|`` in fractional coordinate
    k, i.e. by less than ``r |b_k| n_k`` slabs: it lies at most ``m_k = ceil(r |b_k| n_k)`` slabs away (1 when
    the slabs are at least r thick; more, through periodic images, in a cell thinner than r)."""
    reach = math.sqrt(cutoff * cutoff + NUMERICAL_TOL) + 1e-6
    reciprocal = torch.linalg.inv(cell.to(torch.float64)).norm(dim=0).cpu()  # |b_k|: column k of inv(cell)
    bins = [max(1, math.floor(1.0 / (float(b) * reach))) for b in reciprocal]
    spans = [math.ceil(reach * float(b) * n) for b, n in zip(reciprocal, bins, strict=True)]
    return bins, spans


#: the size rule of ``neighbor_list(method='auto')``: the cell-list search for cells of at least this many
#: atoms whose bins leave at most :data:`CELL_LIST_MAX_FRACTION` of the all-pairs candidates (3 or more bins
#: along every lattice vector), else all pairs: measured on LiF (2-core CPU), the all-pairs search (its
#: candidates filtered by one matrix product) was faster at 512 atoms (2 x 2 x 2 bins, 1/8 of its
#: candidates), even at 1000 atoms (3 x 3 x 3 bins) and 3.6x slower at 1728 (4 x 4 x 4)
CELL_LIST_MIN_ATOMS = 400
CELL_LIST_MAX_FRACTION = 0.05


def _all_pairs_candidates(cart, cell, cutoff, r2):
    """(centre, neighbour, image) candidates of the all-pairs search, sorted by (centre, neighbour, image):
    every atom against every atom and every periodic image that can lie within the cutoff."""
    device = cart.device
    n_atoms = cart.shape[0]
    kmax = _image_range(cell, cutoff)
    axes = [torch.arange(-k, k + 1, device=device, dtype=torch.int64) for k in kmax]
    images = torch.cartesian_prod(*axes)  # (M, 3), lexicographic
    n_images = images.shape[0]
    shifts = _image_shifts(images, cell)
    shifts_sq = (shifts * shifts).sum(dim=1)
    # candidates from |d + s|^2 = |d|^2 + 2 d.s + |s|^2 (a matrix product, no (C, N, M, 3) tensor), with a
    # margin far above its rounding error; each candidate is then measured exactly and elementwise
    prefilter = r2 + 1e-6 * (1.0 + r2)
    chunk_pairs = _CHUNK_PAIRS_CPU if device.type == 'cpu' else _CHUNK_PAIRS
    chunk = max(1, chunk_pairs // max(1, n_atoms * n_images))
    centers, neighbors, image_idx = [], [], []
    for start in range(0, n_atoms, chunk):
        stop = min(n_atoms, start + chunk)
        diff = cart[None, :, :] - cart[start:stop, None, :]  # (C, N, 3)
        d2 = (diff * diff).sum(dim=-1)[:, :, None] + 2.0 * (diff @ shifts.T) + shifts_sq  # (C, N, M)
        ci, nj, mk = torch.nonzero(d2 < prefilter, as_tuple=True)
        centers.append(ci + start)
        neighbors.append(nj)
        image_idx.append(mk)
    return torch.cat(centers), torch.cat(neighbors), images[torch.cat(image_idx)]


def _image_shifts(image: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Cartesian translations of integer images (rows), by the same elementwise products in every search
    (the same bits for the same image, whichever search found the pair)."""
    image_f = image.to(torch.float64)
    return image_f[:, 0:1] * cell[0] + image_f[:, 1:2] * cell[1] + image_f[:, 2:3] * cell[2]


def _cell_list_candidates(wrapped, cart, cell, r2: float, bins: list[int], spans: list[int]):
    """(centre, neighbour, image) candidates of the cell-list search, in no particular order: every atom
    against the atoms of the bins up to ``spans[k]`` bins away along each lattice vector k, with the periodic
    image each of those bins lies in (bins and spans from :func:`_cell_list_bins`). A bin index ``t`` beyond
    the cell is bin ``t mod n`` of image ``floor(t / n)``: distinct ``t`` give distinct (bin, image), so no
    candidate comes twice. Chunk by chunk of centres only the pairs within the cutoff (``r2``, the test of
    :func:`neighbor_list`) are kept, so that the memory stays bounded. Work grows as N for a cell several
    cutoffs wide."""
    device = wrapped.device
    n_atoms = wrapped.shape[0]
    nb = torch.tensor(bins, device=device, dtype=torch.int64)
    cell_of = torch.minimum(torch.floor(wrapped * nb).to(torch.int64), nb - 1)  # (N, 3), wrapped in [0, 1)
    bin_id = (cell_of[:, 0] * nb[1] + cell_of[:, 1]) * nb[2] + cell_of[:, 2]
    order = torch.argsort(bin_id, stable=True)  # the atoms bin by bin
    counts = torch.bincount(bin_id, minlength=bins[0] * bins[1] * bins[2])
    starts = torch.cumsum(counts, 0) - counts
    offsets = torch.cartesian_prod(
        *[torch.arange(-m, m + 1, device=device, dtype=torch.int64) for m in spans]
    )
    n_offsets = offsets.shape[0]
    centers, neighbors, images = [], [], []
    chunk = max(1, _CHUNK_CELL_LIST // max(1, n_offsets * int(counts.max())))
    for begin in range(0, n_atoms, chunk):
        end = min(n_atoms, begin + chunk)
        target = cell_of[begin:end, None, :] + offsets  # (C, K, 3) bins around each centre, unwrapped
        image = torch.div(target, nb, rounding_mode='floor')  # the periodic image that bin lies in
        inside = target - image * nb
        target_id = ((inside[..., 0] * nb[1] + inside[..., 1]) * nb[2] + inside[..., 2]).reshape(-1)
        n_in = counts[target_id]  # atoms in each of the C x K bins
        slot = torch.repeat_interleave(torch.arange(target_id.shape[0], device=device), n_in)
        first = torch.cumsum(n_in, 0) - n_in
        within = torch.arange(slot.shape[0], device=device) - first[slot]
        center = torch.div(slot, n_offsets, rounding_mode='floor') + begin
        neighbor = order[starts[target_id[slot]] + within]
        image = image.reshape(-1, 3)[slot]
        vector = (cart[neighbor] - cart[center]) + _image_shifts(image, cell)
        near = (vector * vector).sum(dim=1) < r2
        centers.append(center[near])
        neighbors.append(neighbor[near])
        images.append(image[near])
    return torch.cat(centers), torch.cat(neighbors), torch.cat(images)


def choose_neighbor_method(cell: torch.Tensor, cutoff: float, n_atoms: int) -> str:
    """``'cell_list'`` or ``'all_pairs'`` by the size rule of :data:`CELL_LIST_MIN_ATOMS` and
    :data:`CELL_LIST_MAX_FRACTION` (candidates per atom: the atoms of the bins searched, against every atom
    in every image searched)."""
    cell = cell.to(torch.float64)
    bins, spans = _cell_list_bins(cell, cutoff)
    per_atom = math.prod(2 * m + 1 for m in spans) / math.prod(bins)
    all_pairs = math.prod(2 * k + 1 for k in _image_range(cell, cutoff))
    if n_atoms >= CELL_LIST_MIN_ATOMS and per_atom <= CELL_LIST_MAX_FRACTION * all_pairs:
        return 'cell_list'
    return 'all_pairs'


def neighbor_list(
    positions: torch.Tensor, cell: torch.Tensor, cutoff: float, method: str = 'auto'
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """All directed pairs within ``cutoff`` (pymatgen's criterion), sorted by (centre, neighbour, image).

    ``positions`` (N, 3) Cartesian in Å, ``cell`` (3, 3) rows = lattice vectors; computed in float64 on their
    device. Returns ``center`` (E,), ``neighbor`` (E,) int64, ``image`` (E, 3) int64 (with respect to the
    unwrapped fractional coordinates ``frac``), ``distance`` (E,) float64 and ``frac`` (N, 3) float64.

    ``method``: ``'all_pairs'`` (every atom against every atom and image: O(N^2) work), ``'cell_list'`` (the
    atoms of the bins around each atom, bins at least a cutoff thick: O(N) work for a cell several cutoffs
    wide; right for any cell, but in one thinner than the cutoff its one bin is the cell) or ``'auto'``
    (:func:`choose_neighbor_method`). Both give the same edges in the same order with bit-identical
    distances: the candidates differ, but each is measured by the same float64 operations.
    """
    if method not in ('auto', 'all_pairs', 'cell_list'):
        raise ValueError(f"neighbor_list: method must be 'auto', 'all_pairs' or 'cell_list', got {method!r}")
    device = positions.device
    positions = positions.to(torch.float64)
    cell = cell.to(device=device, dtype=torch.float64)
    n_atoms = positions.shape[0]
    frac = torch.linalg.solve(cell.T, positions.T).T  # positions = frac @ cell
    shift = torch.floor(frac)
    wrapped = frac - shift  # in [0, 1] (1.0 when a tiny negative coordinate rounds up)
    over = wrapped >= 1.0
    wrapped = torch.where(over, wrapped - 1.0, wrapped)  # now in [0, 1), so |n_k| <= ceil(r |b_k|)
    shift = (shift + over.to(shift.dtype)).to(torch.int64)
    # Cartesian: wrapped positions and image translations, each by the same elementwise products, so that
    # the reverse pair (j -> i, -n) gets exactly the negated vector and therefore the same squared length
    cart = wrapped[:, 0:1] * cell[0] + wrapped[:, 1:2] * cell[1] + wrapped[:, 2:3] * cell[2]
    r2 = cutoff * cutoff + NUMERICAL_TOL
    if method == 'auto':
        method = choose_neighbor_method(cell, cutoff, n_atoms)
    if method == 'cell_list':
        bins, spans = _cell_list_bins(cell, cutoff)
        center, neighbor, wrapped_image = _cell_list_candidates(wrapped, cart, cell, r2, bins, spans)
    else:
        center, neighbor, wrapped_image = _all_pairs_candidates(cart, cell, cutoff, r2)
    vector = (cart[neighbor] - cart[center]) + _image_shifts(wrapped_image, cell)
    d2 = (vector * vector).sum(dim=1)
    dist = torch.sqrt(d2)
    # pymatgen's test on the squared distance; the atom itself (exclude_self) is not its own neighbour
    keep = (d2 < r2) & ~((center == neighbor) & (dist <= NUMERICAL_TOL))
    center, neighbor, wrapped_image, distance = center[keep], neighbor[keep], wrapped_image[keep], dist[keep]
    if method == 'cell_list':  # the order of the all-pairs search: centre, neighbour, image (lexicographic)
        bound = int(wrapped_image.abs().max()) if wrapped_image.shape[0] else 0
        base = 2 * bound + 1
        shifted = wrapped_image + bound  # each in 0 .. base - 1
        code = (shifted[:, 0] * base + shifted[:, 1]) * base + shifted[:, 2]
        order = torch.argsort((center * n_atoms + neighbor) * base**3 + code)
        center, neighbor, wrapped_image, distance = (
            x[order] for x in (center, neighbor, wrapped_image, distance)
        )
    # neighbour at wrapped[j] + n = frac[j] + (n - shift[j]); centre at wrapped[i] = frac[i] - shift[i]
    image = wrapped_image - shift[neighbor] + shift[center]
    return center, neighbor, image, distance, frac


def crystal_graph(
    positions: torch.Tensor,
    cell: torch.Tensor,
    numbers: torch.Tensor,
    *,
    atom_graph_cutoff: float = 5.0,
    bond_graph_cutoff: float = 3.0,
    composition: str | None = None,
    graph_id: str | None = None,
    mp_id: str | None = None,
    on_isolated_atoms: str = 'error',
    neighbor_method: str = 'auto',
):
    """The CHGNet ``CrystalGraph`` of one periodic structure, built with torch ops on ``positions.device``.

    ``positions`` (N, 3) Cartesian Å (unwrapped is fine), ``cell`` (3, 3), ``numbers`` (N,) atomic numbers.
    ``composition``: the graph's ``composition`` string (:func:`composition_formula` when ``None``).
    ``on_isolated_atoms``: what CHGNet's converter does with an atom that has no neighbour: ``'error'``
    (``ValueError``, CHGNet's default), ``'warn'`` or ``'ignore'``. ``neighbor_method``: the neighbour search
    of :func:`neighbor_list` (the same graph either way).
    """
    from chgnet.graph.crystalgraph import CrystalGraph

    device = positions.device
    n_atoms = positions.shape[0]
    center, neighbor, image, distance, frac = neighbor_list(
        positions, cell, atom_graph_cutoff, neighbor_method
    )
    n_edges = center.shape[0]

    # pair every directed edge with its reverse (j -> i, -image) through a sort of integer keys
    bound = int(image.abs().max()) if n_edges else 0
    base = 2 * bound + 1

    def key(a, b, img):
        code = ((img[:, 0] + bound) * base + (img[:, 1] + bound)) * base + (img[:, 2] + bound)
        return (a * n_atoms + b) * base**3 + code

    forward_key = key(center, neighbor, image)  # already sorted: edges come sorted by (i, j, image)
    reverse_key = key(neighbor, center, -image)
    reverse = torch.searchsorted(forward_key, reverse_key)
    if n_edges and (
        bool((reverse >= n_edges).any())
        or not torch.equal(forward_key[reverse.clamp(max=n_edges - 1)], reverse_key)
    ):
        raise RuntimeError('crystal_graph: a directed edge has no reverse edge (inconsistent neighbour list)')
    edge_index = torch.arange(n_edges, device=device)
    first = edge_index < reverse  # the first of the two directed edges of its undirected edge
    undirected_of_first = torch.cumsum(first.to(torch.int64), 0) - 1
    directed2undirected = torch.where(first, undirected_of_first, undirected_of_first[reverse])
    undirected2directed = edge_index[first]

    # bond graph: ordered pairs of distinct directed edges leaving the same atom; the first one with its
    # (undirected) length <= r_bond, the second one with length < r_bond (CHGNet's two comparisons)
    first_ok = torch.nonzero(distance <= bond_graph_cutoff, as_tuple=True)[0]
    second_ok = torch.nonzero(distance < bond_graph_cutoff, as_tuple=True)[0]  # sorted by centre
    counts = torch.bincount(center[second_ok], minlength=n_atoms)
    offsets = torch.cumsum(counts, 0) - counts
    n_partners = counts[center[first_ok]]
    e1 = torch.repeat_interleave(first_ok, n_partners)
    group_start = torch.repeat_interleave(torch.cumsum(n_partners, 0) - n_partners, n_partners)
    within = torch.arange(e1.shape[0], device=device) - group_start
    e2 = second_ok[offsets[center[e1]] + within]
    distinct = e1 != e2
    e1, e2 = e1[distinct], e2[distinct]
    bond_graph = torch.stack(
        [center[e1], directed2undirected[e1], e1, directed2undirected[e2], e2], dim=1
    ).to(torch.int32)

    if on_isolated_atoms != 'ignore':
        n_isolated = n_atoms - int(torch.unique(center).numel())
        if n_isolated:
            message = (
                f'Structure graph_id={graph_id!r} has {n_isolated} isolated atom(s) with '
                f'atom_graph_cutoff={atom_graph_cutoff}. CHGNet calculation will likely go wrong'
            )
            if on_isolated_atoms == 'error':
                raise ValueError(message)
            import sys

            print(message, file=sys.stderr)

    if composition is None:
        composition = composition_formula(numbers.tolist())
    return CrystalGraph(
        atomic_number=numbers.to(device=device, dtype=torch.int32),
        atom_frac_coord=frac.to(torch.float32).requires_grad_(True),
        atom_graph=torch.stack([center, neighbor], dim=1).to(torch.int32),
        neighbor_image=image.to(torch.float32),
        directed2undirected=directed2undirected.to(torch.int32),
        undirected2directed=undirected2directed.to(torch.int32),
        bond_graph=bond_graph,
        lattice=cell.to(device=device, dtype=torch.float32).clone().requires_grad_(True),
        graph_id=graph_id,
        mp_id=mp_id,
        composition=composition,
        atom_graph_cutoff=atom_graph_cutoff,
        bond_graph_cutoff=bond_graph_cutoff,
    )


def crystal_graphs(systems, model, device=None, compositions=None) -> list:
    """One :func:`crystal_graph` per ``(cell, numbers, positions)`` of ``systems``, with the cutoffs of
    ``model.graph_converter`` and on ``device`` (the model's device when ``None``)."""
    converter = model.graph_converter
    if device is None:
        device = next(model.parameters()).device
    graphs = []
    for k, (cell, numbers, positions) in enumerate(systems):
        graphs.append(
            crystal_graph(
                torch.as_tensor(np.asarray(positions), dtype=torch.float64).to(device),
                torch.as_tensor(np.asarray(cell), dtype=torch.float64).to(device),
                torch.as_tensor(np.asarray(numbers), dtype=torch.int64).to(device),
                atom_graph_cutoff=converter.atom_graph_cutoff,
                bond_graph_cutoff=converter.bond_graph_cutoff,
                composition=None if compositions is None else compositions[k],
                on_isolated_atoms=converter.on_isolated_atoms,
            )
        )
    return graphs

"""Build the reference set (``cifs/*.cif`` + ``index.yaml``) from published crystallographic data.

Each entry of :data:`MATERIALS` is the literature's description of a crystal: space group, lattice
parameters, the Wyckoff positions of the asymmetric unit and the formula units per cell Z. The structure is
expanded with pymatgen ``Structure.from_spacegroup`` and written as a CIF that carries its reference, family
and mobile species. The index records the X-ray density Z·M/(N_A·V) computed from the published cell and Z
(not from the expanded structure), so the test that compares the two checks the Wyckoff expansion.

Rebuild (rewrites the folder): ``python -m aiida_superionic.reference.build``. No AiiDA import here.
"""

from __future__ import annotations

import math
from pathlib import Path

OUT = Path(__file__).resolve().parent
N_A = 6.02214076e23

WYCKOFF = 'R. W. G. Wyckoff, Crystal Structures, Vol. 1, 2nd edn, Interscience, New York (1963)'


def _cubic(a: float) -> dict:
    return {'a': a, 'b': a, 'c': a, 'alpha': 90.0, 'beta': 90.0, 'gamma': 90.0}


def _hexagonal(a: float, c: float) -> dict:
    return {'a': a, 'b': a, 'c': c, 'alpha': 90.0, 'beta': 90.0, 'gamma': 120.0}


def _fluorite(cation: str, anion: str, a: float) -> dict:
    """CaF2 type, Fm-3m: cation 4a, anion 8c."""
    sites = [(cation, '4a', (0, 0, 0)), (anion, '8c', (0.25, 0.25, 0.25))]
    return {'sg': 'Fm-3m', 'number': 225, 'lattice': _cubic(a), 'Z': 4, 'sites': sites}


def _antifluorite(cation: str, anion: str, a: float) -> dict:
    """Li2O type, Fm-3m: anion 4a, cation 8c."""
    sites = [(anion, '4a', (0, 0, 0)), (cation, '8c', (0.25, 0.25, 0.25))]
    return {'sg': 'Fm-3m', 'number': 225, 'lattice': _cubic(a), 'Z': 4, 'sites': sites}


def _rocksalt(cation: str, anion: str, a: float) -> dict:
    """NaCl type, Fm-3m: cation 4a, anion 4b."""
    sites = [(cation, '4a', (0, 0, 0)), (anion, '4b', (0.5, 0.5, 0.5))]
    return {'sg': 'Fm-3m', 'number': 225, 'lattice': _cubic(a), 'Z': 4, 'sites': sites}


def _zincblende(cation: str, anion: str, a: float) -> dict:
    """ZnS (sphalerite) type, F-43m: cation 4a, anion 4c."""
    sites = [(cation, '4a', (0, 0, 0)), (anion, '4c', (0.25, 0.25, 0.25))]
    return {'sg': 'F-43m', 'number': 216, 'lattice': _cubic(a), 'Z': 4, 'sites': sites}


def _bif3(anion: str, a: float) -> dict:
    """BiF3 (Li3Bi) type, Fm-3m: anion 4a, Li 4b and 8c."""
    sites = [(anion, '4a', (0, 0, 0)), ('Li', '4b', (0.5, 0.5, 0.5)), ('Li', '8c', (0.25, 0.25, 0.25))]
    return {'sg': 'Fm-3m', 'number': 225, 'lattice': _cubic(a), 'Z': 4, 'sites': sites}


def _antiperovskite(halogen: str, a: float) -> dict:
    """Li3OCl type, Pm-3m: halogen 1a, O 1b, Li 3c."""
    sites = [(halogen, '1a', (0, 0, 0)), ('O', '1b', (0.5, 0.5, 0.5)), ('Li', '3c', (0, 0.5, 0.5))]
    return {'sg': 'Pm-3m', 'number': 221, 'lattice': _cubic(a), 'Z': 1, 'sites': sites}


def _ref(reference: str, doi: str | None = None) -> dict:
    return {'reference': reference, 'doi': doi}


_ZHAO = _ref('Y. Zhao, L. L. Daemen, J. Am. Chem. Soc. 134, 15042 (2012)', '10.1021/ja305709z')
_W = _ref(WYCKOFF)

#: (name, formula, family, mobile species, crystal, reference, structure type / note)
MATERIALS: list[tuple[str, str, str, str, dict, dict, str]] = [
    # --- Li (14) ---
    (
        'Li3N',
        'Li3N',
        'Li',
        'Li',
        {
            'sg': 'P6/mmm',
            'number': 191,
            'lattice': _hexagonal(3.648, 3.875),
            'Z': 1,
            'sites': [('N', '1a', (0, 0, 0)), ('Li', '1b', (0, 0, 0.5)), ('Li', '2c', (1 / 3, 2 / 3, 0))],
        },
        _ref('H. Rabenau, H. Schulz, J. Less-Common Met. 50, 155 (1976)'),
        'alpha-Li3N',
    ),
    ('Li2O', 'Li2O', 'Li', 'Li', _antifluorite('Li', 'O', 4.6114), _W, 'antifluorite'),
    ('Li2S', 'Li2S', 'Li', 'Li', _antifluorite('Li', 'S', 5.708), _W, 'antifluorite'),
    ('Li2Se', 'Li2Se', 'Li', 'Li', _antifluorite('Li', 'Se', 6.017), _W, 'antifluorite'),
    ('Li2Te', 'Li2Te', 'Li', 'Li', _antifluorite('Li', 'Te', 6.517), _W, 'antifluorite'),
    ('LiF', 'LiF', 'Li', 'Li', _rocksalt('Li', 'F', 4.0263), _W, 'rocksalt'),
    ('LiCl', 'LiCl', 'Li', 'Li', _rocksalt('Li', 'Cl', 5.1295), _W, 'rocksalt'),
    ('LiBr', 'LiBr', 'Li', 'Li', _rocksalt('Li', 'Br', 5.5013), _W, 'rocksalt'),
    ('LiI', 'LiI', 'Li', 'Li', _rocksalt('Li', 'I', 6.000), _W, 'rocksalt'),
    ('Li3OCl', 'Li3ClO', 'Li', 'Li', _antiperovskite('Cl', 3.9071), _ZHAO, 'antiperovskite'),
    ('Li3OBr', 'Li3BrO', 'Li', 'Li', _antiperovskite('Br', 4.0211), _ZHAO, 'antiperovskite'),
    (
        'Li3P',
        'Li3P',
        'Li',
        'Li',
        {
            'sg': 'P6_3/mmc',
            'number': 194,
            'lattice': _hexagonal(4.2695, 7.5910),
            'Z': 2,
            'sites': [
                ('P', '2c', (1 / 3, 2 / 3, 0.25)),
                ('Li', '2b', (0, 0, 0.25)),
                ('Li', '4f', (1 / 3, 2 / 3, 0.5827)),
            ],
        },
        _ref('Y. Dong, F. J. DiSalvo, Acta Cryst. E 63, i97 (2007)'),
        'Na3As type',
    ),
    ('Li3Sb', 'Li3Sb', 'Li', 'Li', _bif3('Sb', 6.572), _W, 'BiF3 type'),
    ('Li3Bi', 'Li3Bi', 'Li', 'Li', _bif3('Bi', 6.722), _W, 'BiF3 type'),
    # --- halide (7): the anion is the mobile species ---
    ('CaF2', 'CaF2', 'halide', 'F', _fluorite('Ca', 'F', 5.4626), _W, 'fluorite'),
    ('SrF2', 'SrF2', 'halide', 'F', _fluorite('Sr', 'F', 5.7996), _W, 'fluorite'),
    ('BaF2', 'BaF2', 'halide', 'F', _fluorite('Ba', 'F', 6.2001), _W, 'fluorite'),
    ('CdF2', 'CdF2', 'halide', 'F', _fluorite('Cd', 'F', 5.3880), _W, 'fluorite'),
    ('PbF2', 'PbF2', 'halide', 'F', _fluorite('Pb', 'F', 5.940), _W, 'beta-PbF2 (fluorite)'),
    ('SrCl2', 'SrCl2', 'halide', 'Cl', _fluorite('Sr', 'Cl', 6.9767), _W, 'fluorite'),
    (
        'LaF3',
        'LaF3',
        'halide',
        'F',
        {
            'sg': 'P-3c1',
            'number': 165,
            'lattice': _hexagonal(7.185, 7.351),
            'Z': 6,
            'sites': [
                ('La', '6f', (0.6598, 0, 0.25)),
                ('F', '12g', (0.3659, 0.0536, 0.0813)),
                ('F', '4d', (1 / 3, 2 / 3, 0.1859)),
                ('F', '2a', (0, 0, 0.25)),
            ],
        },
        _ref('A. Zalkin, D. H. Templeton, Acta Cryst. B 41, 91 (1985)', '10.1107/S0108768185001689'),
        'tysonite',
    ),
    # --- Na (4) ---
    ('Na2O', 'Na2O', 'Na', 'Na', _antifluorite('Na', 'O', 5.55), _W, 'antifluorite'),
    ('Na2S', 'Na2S', 'Na', 'Na', _antifluorite('Na', 'S', 6.526), _W, 'antifluorite'),
    ('Na2Se', 'Na2Se', 'Na', 'Na', _antifluorite('Na', 'Se', 6.809), _W, 'antifluorite'),
    ('NaCl', 'NaCl', 'Na', 'Na', _rocksalt('Na', 'Cl', 5.6402), _W, 'rocksalt'),
    # --- O (2) ---
    ('CeO2', 'CeO2', 'O', 'O', _fluorite('Ce', 'O', 5.411), _W, 'fluorite'),
    ('ThO2', 'ThO2', 'O', 'O', _fluorite('Th', 'O', 5.597), _W, 'fluorite'),
    # --- Ag/Cu (3) ---
    ('CuI', 'CuI', 'Ag/Cu', 'Cu', _zincblende('Cu', 'I', 6.0545), _W, 'gamma-CuI (zincblende)'),
    ('CuBr', 'CuBr', 'Ag/Cu', 'Cu', _zincblende('Cu', 'Br', 5.6905), _W, 'gamma-CuBr (zincblende)'),
    (
        'AgI',
        'AgI',
        'Ag/Cu',
        'Ag',
        _zincblende('Ag', 'I', 6.4991),
        _W,
        'gamma-AgI (zincblende), an ordered room-temperature polymorph; alpha-AgI is disordered',
    ),
]

#: Materials named in the issue (or the obvious prototypes) left out, and why.
EXCLUDED: list[tuple[str, str]] = [
    (
        'Li10GeP2S12',
        'Li sites partially occupied (P4_2/nmc, disordered Li in the channels); no ordered published model '
        'whose Wyckoff data we can state with confidence',
    ),
    ('Li6PS5Cl', 'argyrodite: Li on 48h half occupied and S/Cl site mixing; an ordering would be our choice'),
    ('Li3PS4', 'gamma (Pmn2_1) coordinates not known to us with confidence; beta (Pnma) is Li-disordered'),
    (
        'Na3PS4',
        'the S 8c parameter of the cubic (I-43m) phase and the tetragonal coordinates not known to us',
    ),
    ('Na3SbS4', 'tetragonal P-42_1c: S coordinates not known to us with confidence'),
    ('alpha-AgI', 'bcc I with Ag disordered over 12d/24h sites (gamma-AgI is in the set instead)'),
    ('Ag2S', 'monoclinic acanthite (P2_1/c): coordinates not known to us with confidence'),
    ('Cu2Se', 'beta-Cu2Se is Cu-disordered; the ordered alpha structure is disputed in the literature'),
    ('delta-Bi2O3', 'fluorite with 25 % of the O sites vacant at random; an ordering would be our choice'),
    ('Li7La3Zr2O12', 'cubic phase Li-disordered; tetragonal I4_1/acd coordinates not known to us'),
]


def xray_density(formula: str, z: int, lattice: dict) -> float:
    """Z·M/(N_A·V) in g/cm³ from the published cell parameters (triclinic volume formula) and Z."""
    from pymatgen.core import Composition

    a, b, c = lattice['a'], lattice['b'], lattice['c']
    ca, cb, cg = (math.cos(math.radians(lattice[k])) for k in ('alpha', 'beta', 'gamma'))
    volume = a * b * c * math.sqrt(1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg)  # Å³
    return z * float(Composition(formula).weight) / (N_A * volume * 1e-24)


def build_structure(crystal: dict):
    """The pymatgen Structure of ``crystal`` (space group + lattice + Wyckoff representatives)."""
    from pymatgen.core import Lattice, Structure

    lat = crystal['lattice']
    return Structure.from_spacegroup(
        crystal['sg'],
        Lattice.from_parameters(lat['a'], lat['b'], lat['c'], lat['alpha'], lat['beta'], lat['gamma']),
        [el for el, _, _ in crystal['sites']],
        [xyz for _, _, xyz in crystal['sites']],
    )


def build(out: Path = OUT) -> list[dict]:
    """Write ``out/cifs/<name>.cif`` and ``out/index.yaml``; return the index entries."""
    import yaml
    from pymatgen.core import Composition
    from pymatgen.io.cif import CifWriter

    cif_dir = out / 'cifs'
    cif_dir.mkdir(parents=True, exist_ok=True)
    for old in cif_dir.glob('*.cif'):
        old.unlink()
    index = []
    for name, formula, family, mobile, crystal, ref, note in MATERIALS:
        structure = build_structure(crystal)
        wyckoff = ', '.join(
            f'{el} {w} ({", ".join(f"{x:.4f}" for x in xyz)})' for el, w, xyz in crystal['sites']
        )
        citation = ref['reference'] + (f', doi:{ref["doi"]}' if ref['doi'] else '')
        header = [
            f'# {name}: {note}',
            f'# Space group {crystal["sg"]} (No. {crystal["number"]}), Z = {crystal["Z"]}; '
            f'Wyckoff positions: {wyckoff}',
            f'# Reference: {citation}',
            f'# Mobile species: {mobile} (family {family}). Written by aiida_superionic/reference/build.py '
            'with pymatgen Structure.from_spacegroup.',
        ]
        lines = str(CifWriter(structure, symprec=1e-3)).splitlines()
        extra = [
            f'_superionic_mobile_species   {mobile}',
            f'_superionic_family   {family}',
            f"_citation_special_details   '{ref['reference']}'",
        ]
        if ref['doi']:
            extra.append(f'_citation_doi   {ref["doi"]}')
        start = next(i for i, line in enumerate(lines) if line.startswith('data_')) + 1
        text = '\n'.join(header + lines[:start] + extra + lines[start:]) + '\n'
        (cif_dir / f'{name}.cif').write_text(text)
        index.append(
            {
                'name': name,
                'file': f'cifs/{name}.cif',
                'formula': Composition(formula).reduced_formula,
                'family': family,
                'mobile': mobile,
                'structure_type': note,
                'space_group': crystal['sg'],
                'space_group_number': crystal['number'],
                'Z': crystal['Z'],
                'lattice_A_deg': {k: float(v) for k, v in crystal['lattice'].items()},
                'density_g_cm3': round(xray_density(formula, crystal['Z'], crystal['lattice']), 4),
                'density_source': "X-ray density Z·M/(N_A·V) from the reference's cell and Z",
                'reference': ref['reference'],
                'doi': ref['doi'],
            }
        )
    data = {
        'description': 'Prototypical solid electrolytes written from published crystallographic data by '
        'aiida_superionic/reference/build.py; family = the mobile species, as in Lopez et al. (2023).',
        'materials': index,
        'excluded': [{'name': n, 'reason': r} for n, r in EXCLUDED],
    }
    dump = lambda: yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)  # noqa: E731
    (out / 'index.yaml').write_text(dump())
    if out == OUT:  # the plan reads the shipped set through the package
        from . import _index, fast_run_plan

        _index.cache_clear()
        plan = fast_run_plan()
        data['fast_protocol_plan'] = {
            'description': 'MLIP engine, fast protocol, 2 CPU cores: materials that fit in the budget '
            '(aiida_superionic.reference.fast_run_plan); `submit --set reference-fast` runs them',
            **{k: plan[k] for k in ('budget_s', 'steps_per_s_216', 'estimated_total_s', 'included')},
            'excluded_for_time': plan['excluded_for_time'],
            'cells': {
                r['name']: {k: r[k] for k in ('md_supercell', 'md_atoms', 'estimated_s')}
                for r in plan['rows']
            },
        }
        (out / 'index.yaml').write_text(dump())
        _index.cache_clear()
    return index


if __name__ == '__main__':
    build()

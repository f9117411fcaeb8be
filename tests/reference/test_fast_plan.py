"""The stored fast-protocol plan of the reference set: recomputed, within budget, and on the docs page."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiida_superionic.reference import (
    PAPER_FRACTIONS,
    family_fractions,
    fast_run_plan,
    materials,
    stored_fast_plan,
)

DOCS = Path(__file__).resolve().parents[2] / 'docs' / 'reference_set.rst'


def rst_plan_table() -> str:
    """The stored fast-protocol plan as a reStructuredText list-table (the docs page holds this text)."""
    plan = stored_fast_plan()
    lines = [
        f'.. list-table:: Fast protocol on 2 CPU cores: budget {plan["budget_s"]:.0f} s at '
        f'{plan["steps_per_s_216"]} MD steps/s for 216 atoms; estimated total of the included '
        f'{plan["estimated_total_s"]:.0f} s',
        '   :header-rows: 1',
        '',
        '   * - Material',
        '     - MD supercell of the CIF cell',
        '     - MD atoms',
        '     - Estimated s',
        '     - In the 2 h run',
    ]
    for name, cell in plan['cells'].items():
        reps = ' × '.join(str(n) for n in cell['md_supercell'])
        included = 'yes' if name in plan['included'] else 'no (time)'
        lines += [
            f'   * - {name}',
            f'     - {reps}',
            f'     - {cell["md_atoms"]}',
            f'     - {cell["estimated_s"]:.0f}',
            f'     - {included}',
        ]
    return '\n'.join(lines) + '\n'


@pytest.fixture(scope='module')
def plan():
    return fast_run_plan()


def test_stored_plan_is_the_recomputed_one(plan):
    """The index's plan (what `submit --set reference-fast` runs) follows the protocol and the cost model:
    a change to either without a rebuild fails here."""
    stored = stored_fast_plan()
    assert stored['included'] == plan['included']
    assert stored['excluded_for_time'] == plan['excluded_for_time']
    assert stored['estimated_total_s'] == plan['estimated_total_s']
    assert {n: c['md_atoms'] for n, c in stored['cells'].items()} == {
        r['name']: r['md_atoms'] for r in plan['rows']
    }


def test_plan_fits_the_budget_and_covers_the_set(plan):
    assert plan['estimated_total_s'] <= plan['budget_s'] == 7200
    assert sorted(plan['included'] + plan['excluded_for_time']) == sorted(m['name'] for m in materials())
    chosen = [m for m in materials() if m['name'] in plan['included']]
    for family, fraction in family_fractions(chosen).items():
        assert fraction == pytest.approx(PAPER_FRACTIONS[family], abs=0.1), family


def test_md_cost_is_steps_times_atoms_at_the_measured_speed(plan):
    """Analytic: 2 temperatures × 2 cells × 400 steps of a 12-atom cell at 0.28 steps/s for 216 atoms is
    1600 × 12 / (216 × 0.28) = 317.5 s; the MD cell of a 12-atom fluorite CIF is the cell itself."""
    (caf2,) = [r for r in plan['rows'] if r['name'] == 'CaF2']
    assert caf2['md_supercell'] == [1, 1, 1] and caf2['md_atoms'] == 12
    assert caf2['md_s'] == pytest.approx(1600 * 12 / (216 * 0.28), abs=0.1)
    (li3n,) = [r for r in plan['rows'] if r['name'] == 'Li3N']
    assert li3n['md_atoms'] == 12  # 4-atom cell: the smallest diagonal supercell with >= 12 atoms


def test_docs_plan_table_is_the_generated_one():
    assert rst_plan_table() in DOCS.read_text()

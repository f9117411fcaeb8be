"""Descriptor records with a planted structure: known families, a known monotonic non-linear relation."""

from __future__ import annotations

import numpy as np

from aiida_superionic.descriptors import DESCRIPTORS


def planted_records(
    rng: np.random.Generator,
    families: dict[str, float] | None = None,
    n_per_family: int = 10,
    temperatures=(500.0,),
    missing: dict[str, int] | None = None,
    stoichiometries=(True,),
) -> list[dict]:
    """Record attribute dicts. Every numeric descriptor of a material is ``shift + noise`` with the
    shift of its family (so the families are two well-separated blobs in descriptor space), except:

    * ``omega_all`` = x, uniform in [1, 10], and ``D`` = 1e-6 exp(x): a monotonic, strongly non-linear
      relation (Spearman 1, Pearson well below 1);
    * ``C_v_all`` = 2 + 0.1 x + 0.002 T: a smooth function of two inputs, for the ML models;
    * a record with vacancies (``stoichiometries`` holding False) has twice the D of the stoichiometric
      one and Stc = 'non-stoichiometric'; the 0 K descriptors of a material are the same in all its
      records.

    ``missing`` = {descriptor: n}: that descriptor is None in the first n records.
    """
    families = families or {'Li': -3.0, 'Na': 3.0}
    records = []
    for family, shift in families.items():
        for i in range(n_per_family):
            base = {d.key: shift + rng.normal(scale=0.3) for d in DESCRIPTORS if d.numeric}
            x = rng.uniform(1.0, 10.0)
            for t in temperatures:
                for stoichiometric in stoichiometries:
                    values = dict(base)
                    values['omega_all'] = x + 0.001 * (t - 500)
                    values['D'] = 1e-6 * np.exp(x) * (1 + (t - 500) / 1000) * (1 if stoichiometric else 2)
                    values['C_v_all'] = 2.0 + 0.1 * x + 0.002 * t
                    values['Sym'] = 'cubic' if i % 2 else 'tetragonal'
                    values['Stc'] = 'stoichiometric' if stoichiometric else 'non-stoichiometric'
                    records.append(
                        {
                            'schema': 'superionic.record.v1',
                            'material': f'{family}{i:02d}X',
                            'formula': f'{family}{i:02d}X',
                            'mobile_species': family,
                            'temperature_K': float(t),
                            'stoichiometric': stoichiometric,
                            'engine': 'planted',
                            'values': {
                                k: (float(v) if not isinstance(v, str) else v) for k, v in values.items()
                            },
                            'errors': {},
                            'units': {},
                        }
                    )
    for key, n in (missing or {}).items():
        for rec in records[:n]:
            rec['values'][key] = None
    return records

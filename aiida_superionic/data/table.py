"""``superionic.descriptor_table``: a descriptor table as a CSV file in the file repository."""

from __future__ import annotations

import io

import pandas as pd
from aiida.orm import SinglefileData

from ..descriptors import TEXT_COLUMNS, normalise_text


class DescriptorTableData(SinglefileData):
    """The study's input table (one row per descriptor record) as ``descriptor_table.csv``.

    Floats are written at full (round-trip) precision, so the table read back is identical to the one
    stored. Attributes: ``columns``, ``n_rows``, ``materials`` (count), ``families`` and ``units``.
    """

    FILENAME = 'descriptor_table.csv'

    @classmethod
    def from_dataframe(cls, table: pd.DataFrame) -> DescriptorTableData:
        text = table.to_csv(index=False, na_rep='')
        node = cls(io.BytesIO(text.encode()), filename=cls.FILENAME)
        node.base.attributes.set('columns', [str(c) for c in table.columns])
        node.base.attributes.set('n_rows', len(table))
        node.base.attributes.set('materials', int(table['material'].nunique()) if len(table) else 0)
        node.base.attributes.set('families', sorted({str(f) for f in table['family'].dropna()}))
        node.base.attributes.set('units', dict(table.attrs.get('units', {})))
        return node

    def to_dataframe(self) -> pd.DataFrame:
        columns = self.base.attributes.get('columns')
        # pandas >= 3 parses floats exactly by default (and deprecates the option)
        exact = {'float_precision': 'round_trip'} if int(pd.__version__.split('.')[0]) < 3 else {}
        with self.open(mode='r') as handle:
            table = pd.read_csv(
                handle,
                dtype={c: str for c in TEXT_COLUMNS if c in columns},
                keep_default_na=False,
                na_values=[''],
                **exact,
            )
        normalise_text(table)
        table['stoichiometric'] = table['stoichiometric'].astype(bool)
        table['pk'] = table['pk'].astype('Int64')
        table.attrs['units'] = dict(self.base.attributes.get('units', {}))
        return table[columns]

"""``superionic.vasp`` and ``superionic.vasp.vasp``: aiida-vasp's calculation and ``vasp.vasp`` work chain,
with a velocity block in the POSCAR so that an MD segment continues with the velocities of the one before.
"""

from __future__ import annotations

from aiida import orm
from aiida_vasp.calcs.vasp import VaspCalculation
from aiida_vasp.workchains.v2.vasp import VaspWorkChain

from ...exceptions import InputError


class VaspVelocityCalculation(VaspCalculation):
    """aiida-vasp's ``VaspCalculation`` that can also write a velocity block into the POSCAR (MD restarts)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'velocities',
            valid_type=orm.ArrayData,
            required=False,
            help='Array ``velocities`` (n_atoms x 3, Å/fs, cartesian) written after the POSCAR positions.',
        )

    def prepare_for_submission(self, folder):
        """aiida-vasp's, except that with ``settings['SKIP_VASPRUN']`` (MD) the vasprun.xml is neither
        retrieved nor parsed: the trajectory comes from the XDATCAR, the run status from the OUTCAR."""
        calcinfo = super().prepare_for_submission(folder)
        settings = self.inputs.settings.get_dict() if 'settings' in self.inputs else {}
        if settings.get('SKIP_VASPRUN'):
            calcinfo.retrieve_list = [n for n in calcinfo.retrieve_list if n != 'vasprun.xml']
            calcinfo.retrieve_temporary_list = [
                n for n in calcinfo.retrieve_temporary_list if n != 'vasprun.xml'
            ]
        return calcinfo

    def write_poscar(self, dst: str) -> None:
        super().write_poscar(dst)
        if 'velocities' not in self.inputs:
            return
        velocities = self.inputs.velocities.get_array('velocities')
        if velocities.shape != (len(self.inputs.structure.sites), 3):
            raise InputError(
                f'velocities: shape {velocities.shape} does not match {len(self.inputs.structure.sites)} atoms'
            )
        with open(dst, 'a', encoding='utf8') as handle:
            handle.write('Cartesian\n')
            for v in velocities:
                handle.write(f'  {v[0]: .10E} {v[1]: .10E} {v[2]: .10E}\n')


class SuperionicVaspWorkChain(VaspWorkChain):
    """``vasp.vasp`` running :class:`VaspVelocityCalculation` (everything else is aiida-vasp's)."""

    _process_class = VaspVelocityCalculation

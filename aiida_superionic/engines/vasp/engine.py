"""The VASP engine behind the contract of :mod:`aiida_superionic.engines.contract`, on aiida-vasp 5.1."""

from __future__ import annotations

from typing import Any, ClassVar

from ...exceptions import InputError
from ..contract import Engine
from .inputs import FREE_FORM, MD_RETRIEVE, fill_vasp_inputs, step_incar


class VaspEngine(Engine):
    """VASP through aiida-vasp's ``vasp.vasp`` work chain; every step is one ``superionic.vasp.step``."""

    name = 'vasp'
    protocol_package = __package__
    free_form: ClassVar[tuple[str, ...]] = FREE_FORM
    calc_job_plugin = 'vasp.vasp'

    def gamma_gives_dielectric(self, settings: dict[str, Any]) -> bool:
        """The Γ step is one DFPT job (IBRION = 8); with LEPSILON its OUTCAR has ε∞ and the Born charges."""
        incar = step_incar('phonon_gamma', settings)
        return incar.get('IBRION') in (7, 8) and str(incar.get('LEPSILON', False)).strip('.').lower() in (
            'true',
            't',
        )

    def get_builder(self, step: str, structure, code, settings: dict[str, Any], **kwargs: Any):
        from aiida import orm

        from .workchain import MD_DISABLED_HANDLERS, VaspStepWorkChain, VaspVacancyWorkChain

        if step in self.unavailable():
            raise InputError(f'step {step!r}: {self.unavailable()[step]}')
        if step == 'vacancy':
            builder = VaspVacancyWorkChain.get_builder()
            builder.code = code
            builder.structure = structure
            builder.mobile = orm.Str(kwargs['mobile'])
            builder.settings = orm.Dict(settings)
            builder.options = orm.Dict(kwargs.get('options') or {})
            builder.metadata.label = step
            return builder
        incar = step_incar(step, settings, **kwargs)
        builder = VaspStepWorkChain.get_builder()
        vasp = builder.vasp
        parser_settings = None if step == 'relax' else {'check_completeness': False}
        step_settings: dict[str, Any] = {}
        if step == 'md':
            md = settings['md']
            # aiida-vasp's parser: no ionic convergence for MD, no output structure (the next segment reads
            # the CONTCAR itself, with the velocities) and no vasprun.xml (SKIP_VASPRUN: not retrieved, the
            # run status comes from the OUTCAR, the trajectory from the XDATCAR)
            parser_settings = {
                'check_ionic_convergence': False,
                'check_completeness': False,
                'critical_objects': ['OUTCAR'],
            }
            fill_vasp_inputs(
                vasp,
                structure,
                code,
                settings,
                incar,
                kwargs.get('options'),
                gamma_only=True,
                parser_settings=parser_settings,
                retrieve=MD_RETRIEVE,
                skip_vasprun=True,
            )
            vasp.handler_overrides = orm.Dict({name: False for name in MD_DISABLED_HANDLERS})
            vasp.max_iterations = orm.Int(1)
            step_settings = {
                'n_steps': int(md['n_steps']),
                'segment_steps': int(md['segment_steps']),
                'frame_interval': int(md['frame_interval']),
                'timestep_fs': float(md['timestep_fs']),
                'temperature_K': float(kwargs['temperature_K']),
                'max_segments': int(settings.get('max_md_segments', 40)),
            }
            if kwargs.get('mobile'):
                step_settings['mobile'] = kwargs['mobile']
        else:
            # the output structure is only used by relax: the other steps do not require a CONTCAR
            fill_vasp_inputs(
                vasp, structure, code, settings, incar, kwargs.get('options'), parser_settings=parser_settings
            )
            if step == 'dielectric' and kwargs.get('mobile'):
                step_settings['mobile'] = kwargs['mobile']
            if step == 'phonon_gamma' and kwargs.get('mobile') and self.gamma_gives_dielectric(settings):
                step_settings['mobile'] = kwargs['mobile']
                step_settings['lepsilon'] = True  # read ε∞ and the Born charges of the same job
        builder.step = orm.Str(step)
        builder.step_settings = orm.Dict(step_settings)
        builder.metadata.label = step
        return builder

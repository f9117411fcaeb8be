"""``get_builder_from_protocol``, written once for every work chain that has it.

:class:`ProtocolBuilder` resolves protocol + overrides into the engine's settings (an unknown override key
raises :class:`~aiida_superionic.exceptions.InputError` here, before anything is stored) and hands them
to the class's ``_builder_from_settings``; each class only says what differs:

* :class:`EngineStepBuilder`, the engines' own work chains (``MlipBaseWorkChain``, ``VaspStepWorkChain``,
  ``VaspVacancyWorkChain``): the engine builds the process of one ``step``, which must be this class.
* :class:`EngineInputsBuilder`, the engine-neutral work chains (the steps, ``superionic.md``,
  ``superionic.material``): the inputs of :func:`~aiida_superionic.workflows.steps.define_engine_inputs`
  made explicit, ``mobile`` where the class has that input, then the class's ``_fill_step_inputs``.

Engines are found by entry point (:func:`~aiida_superionic.engines.contract.get_engine`): this module
imports no concrete engine.
"""

from __future__ import annotations

from typing import Any

from .contract import Engine, get_engine


class ProtocolBuilder:
    """Mixin of a process class: ``get_builder_from_protocol``."""

    #: The engine whose protocols are read when the caller names none.
    _protocol_engine = 'mlip'

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        structure,
        protocol: str | None = None,
        overrides: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        *,
        engine: str | None = None,
        **kwargs: Any,
    ):
        """A builder with every input explicit, ready to read, edit and launch: the ``engine``'s settings
        resolved from ``protocol`` (default: the engine's default protocol) and ``overrides`` (an unknown
        key raises :class:`~aiida_superionic.exceptions.InputError` here) and the scheduler ``options`` of
        every engine job. ``kwargs`` are the class's own: ``mobile``; ``temperatures``, ``label`` (MD,
        material); ``group_label`` (material); ``step``, ``temperature_K``, ``seed`` (engine work chains)."""
        engine_obj = get_engine(engine or cls._protocol_engine)
        protocol = protocol or engine_obj.default_protocol()
        settings = engine_obj.protocol(protocol, overrides)
        return cls._builder_from_settings(engine_obj, code, structure, protocol, settings, options, **kwargs)

    @classmethod
    def _builder_from_settings(
        cls, engine: Engine, code, structure, protocol: str, settings: dict[str, Any], options, **kwargs
    ):
        raise NotImplementedError


class EngineStepBuilder(ProtocolBuilder):
    """An engine's own work chain: the engine builds the process of ``step`` (default ``_protocol_step``)
    and it must be this class (a step the engine runs with another class raises ``TypeError``)."""

    _protocol_step = 'relax'

    @classmethod
    def _builder_from_settings(cls, engine, code, structure, protocol, settings, options, **kwargs):
        step = kwargs.pop('step', cls._protocol_step)
        builder = engine.get_builder(step, structure, code, settings, options=options, **kwargs)
        process = builder._process_class
        if not isinstance(process, type) or not issubclass(process, cls):
            raise TypeError(f'step {step!r} is not run by {cls.__name__}: use {process.__name__}')
        return builder


class EngineInputsBuilder(ProtocolBuilder):
    """An engine-neutral work chain: ``structure``, ``code``, ``engine``, ``protocol``, the resolved
    ``settings`` and ``options`` as inputs; ``mobile`` (required) where the class has that input."""

    @classmethod
    def _builder_from_settings(cls, engine, code, structure, protocol, settings, options, **kwargs):
        from aiida import orm

        builder = cls.get_builder()
        builder.structure = structure
        builder.code = code
        builder.engine = orm.Str(engine.name)
        builder.protocol = orm.Str(protocol)
        builder.settings = orm.Dict(settings)
        if options:
            builder.options = orm.Dict(dict(options))
        if 'mobile' in cls.spec().inputs:
            mobile = kwargs.pop('mobile', None)
            if mobile is None:
                raise TypeError(f'{cls.__name__}.get_builder_from_protocol needs mobile=')
            builder.mobile = orm.Str(mobile)
        cls._fill_step_inputs(builder, settings, **kwargs)
        return builder

    @classmethod
    def _fill_step_inputs(cls, builder, settings: dict[str, Any], **kwargs: Any) -> None:
        """The class's own inputs from ``kwargs`` (none here)."""
        if kwargs:
            raise TypeError(f'{cls.__name__}.get_builder_from_protocol: unexpected {", ".join(kwargs)}')

"""Registry of net builders, looked up by name like timm's models.

A builder is ``fn(data: DataSpec, deploy: bool, **options) -> BuiltNet``; register it with
:func:`register_net` (optionally with its per-architecture defaults, e.g. the reference crop)
and build it with :func:`build_net`. The registry is the only list of architectures: its
order (mcnn, alexnet, googlenet) is the order of the committed files and
of result tables. Adding an architecture is one module that registers its builder and is
imported by :mod:`mcnn.nets`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError
from mcnn.nets.spec import DataSpec


@dataclass
class BuiltNet:
    """A generated net and the provenance lines for its file header."""

    net: pb.NetParameter
    header: list[str]


NetFn = Callable[..., BuiltNet]


@dataclass(frozen=True)
class ArchInfo:
    """A registered architecture: its builder and its defaults.

    ``crop`` is the reference input crop in pixels (square side; 0 = none, the net takes
    whole fields): images larger than it are cropped to it by default. ``order`` places the
    architecture in :func:`list_nets` (ties keep registration order).
    """

    name: str
    builder: NetFn
    crop: int = 0
    order: int = 100


_REGISTRY: dict[str, ArchInfo] = {}


def register_net(fn: NetFn | None = None, *, crop: int = 0, order: int = 100) -> NetFn | Callable[[NetFn], NetFn]:
    """Register ``fn`` under its function name; use as ``@register_net`` or ``@register_net(crop=227)``.

    ``crop`` and ``order`` are the :class:`ArchInfo` defaults of the architecture.
    """

    def add(builder: NetFn) -> NetFn:
        _REGISTRY[builder.__name__] = ArchInfo(builder.__name__, builder, crop, order)
        return builder

    return add(fn) if fn is not None else add


def list_nets() -> list[str]:
    """Names of the registered architectures, by ``order`` (mcnn, alexnet, googlenet, then new ones)."""
    return [info.name for info in sorted(_REGISTRY.values(), key=lambda info: info.order)]


def arch_info(arch: str) -> ArchInfo:
    """The registered :class:`ArchInfo` of ``arch``; :class:`ConfigError` listing the choices otherwise."""
    try:
        return _REGISTRY[arch]
    except KeyError:
        raise ConfigError(f"unknown --arch {arch!r}; choose from {', '.join(list_nets())}") from None


def build_net(arch: str, data: DataSpec, deploy: bool = False, **options: object) -> BuiltNet:
    """Build architecture ``arch`` for ``data``; ``options`` go to the builder."""
    return arch_info(arch).builder(data, deploy=deploy, **options)

"""Registry of net builders, looked up by name like timm's models.

A builder is ``fn(data: DataSpec, deploy: bool, **options) -> BuiltNet``; register it with
:func:`register_net` and build it with :func:`build_net`.
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
_REGISTRY: dict[str, NetFn] = {}


def register_net(fn: NetFn) -> NetFn:
    """Register ``fn`` under its function name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_nets() -> list[str]:
    """Names of the registered architectures."""
    return sorted(_REGISTRY)


def build_net(arch: str, data: DataSpec, deploy: bool = False, **options: object) -> BuiltNet:
    """Build architecture ``arch`` for ``data``; ``options`` go to the builder."""
    try:
        fn = _REGISTRY[arch]
    except KeyError:
        raise ConfigError(f"unknown --arch {arch!r}; choose from {', '.join(list_nets())}") from None
    return fn(data, deploy=deploy, **options)

"""pycaffe's ``caffe.net_spec``: write nets as Python, get a NetParameter.

``L.<Type>(*bottoms, **fields)`` makes a layer of any type; ``n = NetSpec(); n.conv1 = ...``
names tops (and their layers) by attribute; ``n.to_proto()`` (or :func:`to_proto` on some tops)
gives the NetParameter in dependency order. Keyword fields go, as in Caffe, to the layer's
``<type>_param`` message when that message has them (``L.Convolution(x, kernel_size=3)`` sets
``convolution_param.kernel_size``), else to the LayerParameter itself (``param``, ``include``,
``loss_weight``, ``name``, ...); names ending in ``param`` always go to the LayerParameter.
The ``<type>_param`` of each type comes from the schema's descriptor (``ConvolutionParameter``
is ``convolution_param``). Special keywords: ``ntop`` (number of tops; 0 returns the layer
itself) and ``in_place`` (the tops are the bottoms). ``P.<Type>.<ENUM>`` reads enum values,
e.g. ``P.Pooling.MAX``.

Unnamed tops and layers are called ``<Type><n>`` (``Convolution1``, ...), as Caffe does.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator
from typing import Any

from google.protobuf import message as _message

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError


def _param_fields() -> dict[str, str]:
    """Layer type -> its LayerParameter field: ``XParameter`` messages held by ``x_param`` give ``X``."""
    out = {}
    for field in pb.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param") and field.message_type is not None:
            out[field.message_type.name.removesuffix("Parameter")] = field.name
    return out


#: Caffe layer type (the name its parameter message carries) -> its ``<type>_param`` field.
PARAM_FIELDS: dict[str, str] = _param_fields()


def _repeated(descriptor: Any) -> bool:
    """Whether a field is repeated (``is_repeated`` in protobuf >= 5, ``label`` before; 7 has only the former)."""
    flag = getattr(descriptor, "is_repeated", None)
    return bool(flag) if flag is not None else descriptor.label == descriptor.LABEL_REPEATED


def _assign(message: _message.Message, name: str, value: Any, where: str) -> None:
    """Set field ``name`` of ``message`` from a Python value.

    Messages take dicts (field by field) or messages; repeated fields take a list or one value.
    AttributeError if ``message`` has no such field; :class:`ConfigError` for a value that does not fit.
    """
    descriptor = message.DESCRIPTOR.fields_by_name.get(name)
    if descriptor is None:
        raise AttributeError(name)
    field = getattr(message, name)
    try:
        if _repeated(descriptor):
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if descriptor.message_type is not None:
                    _fill(field.add(), item, where)
                else:
                    field.append(item)
        elif descriptor.message_type is not None:
            _fill(field, value, where)
        else:
            setattr(message, name, value)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: field {name!r} of {message.DESCRIPTOR.name}: {exc}") from None


def _fill(message: _message.Message, value: Any, where: str) -> None:
    """Fill a message field from a dict of its fields or from a message of its type."""
    if isinstance(value, _message.Message):
        message.CopyFrom(value)
        return
    if not isinstance(value, dict):
        raise TypeError(f"expected a dict (or a {message.DESCRIPTOR.name}), got {type(value).__name__}")
    for key, sub in value.items():
        _assign_checked(message, key, sub, where)


def _assign_checked(message: _message.Message, name: str, value: Any, where: str) -> None:
    try:
        _assign(message, name, value, where)
    except AttributeError:
        raise ConfigError(f"{where}: {message.DESCRIPTOR.name} has no field {name!r}") from None


class Top:
    """One output of a layer function; use it as a bottom of further layers."""

    def __init__(self, fn: Function, index: int):
        self.fn = fn
        self.n = index

    def to_proto(self) -> pb.NetParameter:
        """The net that computes this top (its layer and everything it depends on)."""
        return to_proto(self)

    def _to_proto(self, layers: dict[Function, pb.LayerParameter], names: dict[Any, str], autonames: Counter) -> None:
        self.fn._to_proto(layers, names, autonames)


class Function:
    """One layer: its type, bottoms (:class:`Top`) and keyword fields; ``tops`` are its outputs."""

    def __init__(self, type_name: str, inputs: tuple[Any, ...], params: dict[str, Any]):
        self.type_name = type_name
        for i, bottom in enumerate(inputs):
            if not isinstance(bottom, Top):
                raise TypeError(f"{type_name} input {i} is not a Top (type is {type(bottom).__name__})")
        self.inputs = inputs
        self.params = dict(params)
        self.ntop = int(self.params.pop("ntop", 1))
        self.in_place = bool(self.params.pop("in_place", False))
        self.tops = tuple(Top(self, i) for i in range(self.ntop))

    def _top_name(self, top: Top, names: dict[Any, str], autonames: Counter) -> str:
        if top not in names:
            autonames[self.type_name] += 1
            names[top] = f"{self.type_name}{autonames[self.type_name]}"
        return names[top]

    def _name(self, names: dict[Any, str], autonames: Counter) -> str:
        if self not in names:
            if self.ntop > 0:
                names[self] = self._top_name(self.tops[0], names, autonames)
            else:
                autonames[self.type_name] += 1
                names[self] = f"{self.type_name}{autonames[self.type_name]}"
        return names[self]

    def _to_proto(self, layers: dict[Function, pb.LayerParameter], names: dict[Any, str], autonames: Counter) -> None:
        """Add this layer (after the layers of its bottoms) to ``layers``, unless it is there already."""
        if self in layers:
            return
        bottoms = []
        for bottom in self.inputs:
            bottom._to_proto(layers, names, autonames)
            bottoms.append(layers[bottom.fn].top[bottom.n])
        layer = pb.LayerParameter(type=self.type_name, bottom=bottoms)
        if self.in_place:
            layer.top.extend(bottoms)
        else:
            layer.top.extend(self._top_name(top, names, autonames) for top in self.tops)
        layer.name = self._name(names, autonames)
        shown = self.params.get("name", layer.name)  # a name= keyword renames the layer (below)
        where = f"layer {shown!r} ({self.type_name})"
        field = PARAM_FIELDS.get(self.type_name)
        for key, value in self.params.items():
            if not key.endswith("param") and field is not None:
                try:
                    _assign(getattr(layer, field), key, value, where)
                    continue
                except AttributeError:
                    pass
            _assign_checked(layer, key, value, where)
        layers[self] = layer


def to_proto(*tops: Top | Function) -> pb.NetParameter:
    """The NetParameter computing ``tops``: every layer they depend on, bottoms before tops."""
    layers: dict[Function, pb.LayerParameter] = OrderedDict()
    autonames: Counter = Counter()
    names: dict[Any, str] = {}
    for top in tops:
        top._to_proto(layers, names, autonames)
    return pb.NetParameter(layer=list(layers.values()))


class NetSpec:
    """Named tops: ``n.name = L.Type(...)`` names the top (and its layer) ``name``; :meth:`to_proto` builds the net."""

    def __init__(self) -> None:
        super().__setattr__("tops", OrderedDict())

    def __setattr__(self, name: str, value: Top | Function) -> None:
        self.tops[name] = value

    def __getattr__(self, name: str) -> Top | Function:
        try:
            return self.tops[name]
        except KeyError:
            raise AttributeError(f"NetSpec has no top {name!r}; it has: {', '.join(self.tops) or 'none'}") from None

    def __setitem__(self, key: str, value: Top | Function) -> None:
        self.tops[key] = value

    def __getitem__(self, key: str) -> Top | Function:
        return self.__getattr__(key)

    def __delitem__(self, key: str) -> None:
        del self.tops[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tops)

    def keys(self) -> list[str]:
        """The top names, in assignment order."""
        return list(self.tops)

    def vals(self) -> list[Top | Function]:
        """The tops, in assignment order."""
        return list(self.tops.values())

    def to_proto(self) -> pb.NetParameter:
        """The NetParameter of every named top, layers in dependency and assignment order."""
        names: dict[Any, str] = {value: key for key, value in self.tops.items()}
        layers: dict[Function, pb.LayerParameter] = OrderedDict()
        autonames: Counter = Counter()
        for top in self.tops.values():
            top._to_proto(layers, names, autonames)
        return pb.NetParameter(layer=list(layers.values()))


class Layers:
    """``L.<Type>(*bottoms, **fields)``: a layer of any type; gives its top, its tops (ntop > 1) or itself (ntop 0)."""

    def __getattr__(self, type_name: str) -> Any:
        if type_name.startswith("__"):
            raise AttributeError(type_name)

        def layer(*bottoms: Top, **fields: Any) -> Top | tuple[Top, ...] | Function:
            fn = Function(type_name, bottoms, fields)
            if fn.ntop == 0:
                return fn
            return fn.tops[0] if fn.ntop == 1 else fn.tops

        layer.__name__ = type_name
        return layer


class _ParamEnums:
    """The enum values of one ``<Type>Parameter`` message: ``P.Pooling.MAX``."""

    def __init__(self, type_name: str):
        self._message = getattr(pb, f"{type_name}Parameter", None)
        if self._message is None:
            raise AttributeError(f"the schema has no {type_name}Parameter")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)


class Parameters:
    """``P.<Type>.<VALUE>``: enum values of the schema's parameter messages (``P.Pooling.MAX``)."""

    def __getattr__(self, type_name: str) -> _ParamEnums:
        if type_name.startswith("__"):
            raise AttributeError(type_name)
        return _ParamEnums(type_name)


layers = Layers()
params = Parameters()

__all__ = ["PARAM_FIELDS", "Function", "Layers", "NetSpec", "Parameters", "Top", "layers", "params", "to_proto"]

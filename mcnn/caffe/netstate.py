"""Caffe's phase/level/stage rules: which layers a net instance contains."""

from __future__ import annotations

from collections.abc import Sequence

from mcnn.caffe.proto import caffe_pb2 as pb


def _rule_met(rule: pb.NetStateRule, state: pb.NetState) -> bool:
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    if any(s not in stages for s in rule.stage):
        return False
    return not any(s in stages for s in rule.not_stage)


def layer_included(layer: pb.LayerParameter, state: pb.NetState) -> bool:
    """Whether ``layer`` belongs to a net in ``state`` (Caffe's Net::StateMeetsRule).

    With ``include`` rules the layer needs one rule met; otherwise it is in unless one of
    its ``exclude`` rules is met.
    """
    if len(layer.include):
        return any(_rule_met(rule, state) for rule in layer.include)
    return not any(_rule_met(rule, state) for rule in layer.exclude)


def net_state(phase: int, level: int = 0, stages: Sequence[str] = ()) -> pb.NetState:
    """A NetState message (``phase`` is ``pb.TRAIN`` or ``pb.TEST``)."""
    return pb.NetState(phase=phase, level=level, stage=list(stages))


def filter_net(net: pb.NetParameter, phase: int, level: int = 0, stages: Sequence[str] = ()) -> pb.NetParameter:
    """A copy of ``net`` holding only the layers of the given phase/level/stages."""
    state = net_state(phase, level, stages)
    out = pb.NetParameter()
    out.CopyFrom(net)
    del out.layer[:]
    out.layer.extend(layer for layer in net.layer if layer_included(layer, state))
    return out

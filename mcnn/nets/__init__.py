"""Net and solver builders: the architecture registry, dataset presets and net summaries."""

from mcnn.nets import baselines as _baselines  # noqa: F401  (registers alexnet, googlenet)
from mcnn.nets import mcnn as _mcnn  # noqa: F401  (registers mcnn)
from mcnn.nets.registry import BuiltNet, build_net, list_nets, register_net
from mcnn.nets.spec import DataSpec
from mcnn.nets.summary import NetSummary, summarize

__all__ = ["BuiltNet", "DataSpec", "NetSummary", "build_net", "list_nets", "register_net", "summarize"]

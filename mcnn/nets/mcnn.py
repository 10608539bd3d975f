"""The multi-scale CNN (M-CNN) of Godinez et al. 2017, as a Caffe net.

What the paper fixes (its §2.2 and Fig. 2): the input is subsampled by s = 1, 2, 4, ..., 64
through pooling; each scale feeds its own pathway of three 5x5 convolutions, each followed
by ReLU; each pathway's output is pooled to the coarsest scale; the pooled maps are
concatenated and fused by a pixel-wise (1x1) convolution; then a fully connected layer of
512 units and the output layer of N_p units with a softmax. In total 22 convolutional
layers (21 in the pathways, with 624 kernel maps) and 2 fully connected layers.

What the paper leaves to its lost Supplementary Table 1, and what we chose: MAX pooling
for subsampling and merging, pad 2 (sizes kept within a pathway), pathway widths
16,16,16,32,32,32,64 (the only split known to give 624 maps; Hofmarcher et al. 2019's
port), a 1024-wide fusion conv followed by 2x2 MAX pooling (same port), no dropout,
Xavier weights and zero biases, and Caffe's usual lr_mult/decay_mult of 1/1 (weights)
and 2/0 (biases).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcnn.errors import ConfigError
from mcnn.nets.registry import BuiltNet, register_net
from mcnn.nets.spec import DataSpec, NetBuilder

PAPER_SCALES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
#: Kernel maps per pathway conv, finest to coarsest: 3 x (16+16+16+32+32+32+64) = 624.
DEFAULT_PATHWAY_WIDTHS: tuple[int, ...] = (16, 16, 16, 32, 32, 32, 64)
PAPER_KERNEL = 5
PAPER_FC_WIDTH = 512


@dataclass(frozen=True)
class McnnOptions:
    """Architecture options of the M-CNN; the defaults are the reconstruction above.

    ``pathway_widths`` has one entry per scale (kernel maps of each of its 3 convs);
    ``fusion_pool`` is the kernel = stride of the MAX pooling after the 1x1 conv (0 = none);
    ``dropout`` is the ratio of a Dropout after the 512-unit layer (0 = none).
    """

    scales: tuple[int, ...] = PAPER_SCALES
    pathway_widths: tuple[int, ...] | None = None
    kernel_size: int = PAPER_KERNEL
    convs_per_pathway: int = 3
    pool: str = "MAX"
    fusion_width: int = 1024
    fusion_pool: int = 2
    fc_width: int = PAPER_FC_WIDTH
    dropout: float = 0.0
    weight_filler: str = "xavier"

    def widths(self) -> tuple[int, ...]:
        """Pathway widths, defaulting to the reconstruction's for the paper's scales."""
        if self.pathway_widths is not None:
            return self.pathway_widths
        if self.scales == PAPER_SCALES:
            return DEFAULT_PATHWAY_WIDTHS
        # For other scale sets keep each scale's width from the default table.
        table = dict(zip(PAPER_SCALES, DEFAULT_PATHWAY_WIDTHS, strict=True))
        return tuple(table.get(s, 64) for s in self.scales)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for inconsistent options (scales, widths, filler, dropout)."""
        scales = self.scales
        if not scales:
            raise ConfigError("--scales needs at least one scale")
        for s in scales:
            if s < 1 or s & (s - 1):
                raise ConfigError(f"--scales: {s} is not a power of two (1, 2, 4, ...)")
        if list(scales) != sorted(set(scales)):
            raise ConfigError(f"--scales must be increasing without repeats, got {','.join(map(str, scales))}")
        widths = self.widths()
        if len(widths) != len(scales):
            raise ConfigError(
                f"--widths has {len(widths)} values for {len(scales)} scales (one per pathway)"
            )
        if min(widths) < 1:
            raise ConfigError("--widths must all be at least 1")
        if self.pool not in ("MAX", "AVE"):
            raise ConfigError(f"--pool must be MAX or AVE, got {self.pool!r}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"--kernel must be an odd size (pad keeps the size), got {self.kernel_size}")
        if self.convs_per_pathway < 1:
            raise ConfigError("convs_per_pathway must be at least 1")
        if self.fusion_width < 1 or self.fc_width < 1:
            raise ConfigError("--fusion-width and --fc-width must be at least 1")
        if self.fusion_pool < 0 or self.fusion_pool == 1:
            raise ConfigError(f"--fusion-pool must be 0 (none) or at least 2, got {self.fusion_pool}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.weight_filler not in ("xavier", "msra", "gaussian"):
            raise ConfigError(f"--weight-filler must be xavier, msra or gaussian, got {self.weight_filler!r}")

    def provenance(self) -> list[str]:
        """Header lines: which choices are the paper's and which are ours."""
        paper, ours = [], []
        scales = ",".join(map(str, self.scales))
        (paper if self.scales == PAPER_SCALES else ours).append(f"scales {scales}")
        conv = f"{self.convs_per_pathway} conv {self.kernel_size}x{self.kernel_size} + ReLU per pathway"
        default_shape = self.kernel_size == PAPER_KERNEL and self.convs_per_pathway == 3
        (paper if default_shape else ours).append(conv)
        paper.append("each pathway pooled to the coarsest scale, concatenated, 1x1 fusion conv + ReLU")
        (paper if self.fc_width == PAPER_FC_WIDTH else ours).append(f"FC {self.fc_width} + ReLU, FC N_p, softmax")
        widths = ",".join(map(str, self.widths()))
        default_widths = self.scales == PAPER_SCALES and self.widths() == DEFAULT_PATHWAY_WIDTHS
        ours.append(
            f"pathway widths {widths}" + (" (gives the paper's 624 maps; Hofmarcher 2019 port)"
                                          if default_widths else "")
        )
        ours.append(f"{self.pool} pooling for subsampling and merging; pad {self.kernel_size // 2}")
        fusion = f"fusion width {self.fusion_width}"
        fusion += f" + {self.fusion_pool}x{self.fusion_pool} MAX pool" if self.fusion_pool else ", no pooling"
        ours.append(fusion + (" (Hofmarcher 2019 port)" if (self.fusion_width, self.fusion_pool) == (1024, 2) else ""))
        ours.append(f"dropout {self.dropout}" if self.dropout else "no dropout")
        ours.append(f"{self.weight_filler} weights, zero biases, lr_mult 1/2, decay_mult 1/0")
        return ["From the paper: " + "; ".join(paper) + ".",
                "Reconstruction (Suppl. Table 1 is lost): " + "; ".join(ours) + "."]


def _weight_filler(kind: str) -> dict[str, object]:
    if kind == "gaussian":
        return {"type": "gaussian", "std": 0.01}
    return {"type": kind}


@register_net(order=0)
def mcnn(data: DataSpec, deploy: bool = False, name: str = "M-CNN", **options: object) -> BuiltNet:
    """Build the M-CNN for ``data``; ``options`` are :class:`McnnOptions` fields."""
    opts = McnnOptions(**options)  # type: ignore[arg-type]
    opts.validate()
    b = NetBuilder(name, data, deploy)
    data_blob = b.input()
    coarsest = max(opts.scales)
    weight = _weight_filler(opts.weight_filler)
    bias = {"type": "constant", "value": 0}
    pad = opts.kernel_size // 2
    merged: list[str] = []
    for scale, width in zip(opts.scales, opts.widths(), strict=True):
        blob = data_blob
        if scale > 1:
            blob = b.pool(f"pool_in_s{scale}", blob, opts.pool, kernel=scale, stride=scale)
        for i in range(1, opts.convs_per_pathway + 1):
            blob = b.conv(f"conv{i}_s{scale}", blob, width, opts.kernel_size, pad=pad,
                          weight_filler=weight, bias_filler=bias)
            b.relu(f"relu{i}_s{scale}", blob)
        if scale < coarsest:
            factor = coarsest // scale
            blob = b.pool(f"pool_out_s{scale}", blob, opts.pool, kernel=factor, stride=factor)
        merged.append(blob)
    blob = b.concat("concat", merged) if len(merged) > 1 else merged[0]
    blob = b.conv("conv_fuse", blob, opts.fusion_width, 1, weight_filler=weight, bias_filler=bias)
    b.relu("relu_fuse", blob)
    if opts.fusion_pool:
        blob = b.pool("pool_fuse", blob, "MAX", kernel=opts.fusion_pool, stride=opts.fusion_pool)
    blob = b.inner_product("fc1", blob, opts.fc_width, weight_filler=weight, bias_filler=bias)
    b.relu("relu_fc1", blob)
    if opts.dropout:
        b.dropout("drop_fc1", blob, opts.dropout)
    logits = b.inner_product("fc2", blob, data.classes, weight_filler=weight, bias_filler=bias)
    b.classifier(logits)
    title = "M-CNN of Godinez et al. 2017 (Bioinformatics 33(13):2010)."
    return BuiltNet(net=b.net, header=[title, *opts.provenance()])


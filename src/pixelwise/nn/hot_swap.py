"""Layer hot-swapping (Su et al. 2019, Sec. 6): turn chosen ``nn.Conv2d`` layers of a trained
network into PAC layers with the same weights, guided by an earlier feature map.

``convert_to_pac(model, layers=["stages.2.1.conv2", ...], guide="stem")`` replaces each named
convolution in place by a :class:`HotSwappedPac` (a :class:`~pixelwise.nn.PacConv2d`, so the
``state_dict`` keys and shapes do not change and the trained checkpoint loads as is). A forward
hook on the ``guide`` module records its output on every forward pass; each swapped layer
resizes that map bilinearly to its own input resolution and multiplies it by ``scale``
(1e-4 in the paper), so ``K = exp(-0.5 * scale^2 * ||f_i - f_j||^2)`` is 1 up to ~1e-8 and the
converted network computes what the original did until fine-tuning moves the guide.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_float
from .pac import PacConv2d

__all__ = ["GuideRecorder", "HotSwappedPac", "convert_to_pac"]


class GuideRecorder:
    """Holds the latest output of the guide layer for the swapped layers of one model.

    Not a submodule (that would become a layer of an ``nn.Sequential``); the forward hook is a
    bound method of it and the swapped layers keep a reference, so ``copy.deepcopy`` of the model
    copies one recorder shared by the copied hook and layers.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.latest: torch.Tensor | None = None

    def record(self, module, inputs, output) -> None:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise ValueError(f"guide layer {self.name!r} must output a (B, C, H, W) tensor, got "
                             f"{type(output).__name__ if not isinstance(output, torch.Tensor) else tuple(output.shape)}")
        self.latest = output

    # The recorded map is an activation of the last forward pass, not state: copies start without
    # it (deepcopy of a non-leaf tensor, i.e. after any forward pass with autograd on, would fail).
    def __deepcopy__(self, memo) -> GuideRecorder:
        clone = GuideRecorder(self.name)
        memo[id(self)] = clone
        return clone

    def __getstate__(self) -> dict:
        return {"name": self.name, "latest": None}

class HotSwappedPac(PacConv2d):
    """A ``PacConv2d`` that takes its adapting features from a :class:`GuideRecorder`."""

    def __init__(self, conv: nn.Conv2d, recorder: GuideRecorder, scale: float, layer_name: str) -> None:
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         conv.dilation, conv.groups, conv.bias is not None, device=conv.weight.device,
                         dtype=conv.weight.dtype)
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            if conv.bias is not None:
                self.bias.copy_(conv.bias)
        self.weight.requires_grad_(conv.weight.requires_grad)
        if conv.bias is not None:
            self.bias.requires_grad_(conv.bias.requires_grad)
        self._recorder = recorder
        self.guide_scale = float(scale)
        self.layer_name = layer_name

    def forward(self, input, guide=None, kernel=None):  # noqa: D102 - see the class docstring
        if guide is None and kernel is None:
            feat = self._recorder.latest
            if feat is None:
                raise RuntimeError(f"hot-swapped layer {self.layer_name!r}: the guide layer "
                                   f"{self._recorder.name!r} has not run yet; the guide must be computed "
                                   "before this layer in the forward pass")
            if feat.shape[0] != input.shape[0]:
                raise RuntimeError(f"hot-swapped layer {self.layer_name!r}: the recorded guide has batch "
                                   f"{feat.shape[0]}, the input {input.shape[0]}; was the guide layer skipped?")
            if feat.shape[-2:] != input.shape[-2:]:
                feat = F.interpolate(feat, size=tuple(input.shape[-2:]), mode="bilinear", align_corners=False)
            guide = feat.to(input.dtype) * self.guide_scale
        return super().forward(input, guide, kernel)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", guide={self._recorder.name!r}, guide_scale={self.guide_scale:g}"


def _resolve(model: nn.Module, name: str, what: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"{what}: {name!r} is not a submodule of the model") from None


def convert_to_pac(model: nn.Module, layers: Sequence[str], guide: str, scale: float = 1e-4) -> nn.Module:
    """Replace the ``nn.Conv2d`` layers named in ``layers`` by PAC layers guided by ``guide``'s output.

    Args:
        model: any module; changed in place and returned.
        layers: dotted names (as in ``model.named_modules()``) of ``nn.Conv2d`` layers with odd
            kernel sizes and zero padding.
        guide: dotted name of the module whose output is the adapting feature map; it must run
            before the swapped layers in ``forward``.
        scale: multiplies the guide features (1e-4: outputs unchanged before fine-tuning).

    Returns:
        ``model``, whose swapped layers are :class:`HotSwappedPac` with the original weights.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        >>> x = torch.randn(1, 3, 16, 16)
        >>> before = net(x)
        >>> convert_to_pac(net, layers=["2"], guide="0")(x).allclose(before, atol=1e-6)
        True
    """
    if isinstance(layers, str):
        layers = [layers]
    if not layers:
        raise ValueError("layers: name at least one nn.Conv2d layer to convert")
    scale = check_float(scale, "scale", low=0, low_open=True)
    guide_module = _resolve(model, guide, "guide")
    for name in layers:
        conv = _resolve(model, name, "layers")
        if isinstance(conv, HotSwappedPac):
            raise ValueError(f"layers: {name!r} is already a PAC layer")
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"layers: {name!r} is a {type(conv).__name__}, not an nn.Conv2d")
        if any(k % 2 == 0 for k in conv.kernel_size):
            raise ValueError(f"layers: {name!r} has an even kernel size {conv.kernel_size}; PAC needs odd sizes")
        if conv.padding_mode != "zeros":
            raise ValueError(f"layers: {name!r} uses padding_mode {conv.padding_mode!r}; PAC layers need zero padding")
        if name == guide or name.startswith(guide + "."):
            raise ValueError(f"layers: {name!r} is (inside) the guide layer {guide!r}; the guide must come earlier")
    recorder = GuideRecorder(guide)
    guide_module.register_forward_hook(recorder.record)
    for name in layers:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, HotSwappedPac(_resolve(model, name, "layers"), recorder, scale, name))
    return model

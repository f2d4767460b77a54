"""Stateless tensor functions: the adaptive-filter engine and its uses. No nn.Module here."""

from .adaptive_filter import adaptive_conv, pixel_filter
from .pac import pac_conv2d, pac_conv_transpose2d, pac_pool2d
from .pac_kernel import pac_kernel, tap_validity_mask

__all__ = [
    "adaptive_conv",
    "pixel_filter",
    "pac_kernel",
    "tap_validity_mask",
    "pac_conv2d",
    "pac_conv_transpose2d",
    "pac_pool2d",
]

from .bilateral import bilateral_filter, joint_bilateral_filter, joint_bilateral_upsample  # noqa: E402
from .filter_flow import apply_pixel_filters  # noqa: E402
from .sac import sac_conv2d  # noqa: E402

__all__ += [
    "bilateral_filter",
    "joint_bilateral_filter",
    "joint_bilateral_upsample",
    "apply_pixel_filters",
    "sac_conv2d",
]

from .range_knn import knn_refine  # noqa: E402

__all__ += ["knn_refine"]

from .mean_shift import euclidean_mean_shift_step, kappa_from_margin, mean_shift_step, recurrent_mean_shift  # noqa: E402

__all__ += ["kappa_from_margin", "mean_shift_step", "recurrent_mean_shift", "euclidean_mean_shift_step"]

from .gating import annealed_tau, bin_gate, depth_bins, gated_sum, gumbel_gate, gumbel_noise, kl_sparsity  # noqa: E402

__all__ += ["depth_bins", "bin_gate", "gated_sum", "gumbel_noise", "gumbel_gate", "kl_sparsity", "annealed_tau"]

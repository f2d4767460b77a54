"""Pairwise spherical-embedding loss of Kong & Fowlkes 2018 ("Recurrent Pixel Embedding").

Every pixel ``i`` has an embedding ``x_i`` (compared through its direction only) and an
instance label ``y_i``. With ``s_ij = (1 + cos(x_i, x_j)) / 2`` in [0, 1], one image's loss is

    sum_{i,j} w_i w_j ( [y_i = y_j] (1 - s_ij) + [y_i != y_j] max(0, s_ij - alpha) ) / Z

with constant slopes (not squared), instance-aware weights ``w_i = 1 / |I_q|`` (``I_q`` the
pixels of ``i``'s group, counted among the pixels given), and the normaliser ``Z``:

* ``normalize="paper"``: ``Z = N``, the number of labelled pixels (Eq. 2 of the paper);
* ``normalize="instances"`` (default): ``Z = sum_{i,j} w_i w_j = Q^2``, ``Q`` the number of
  groups present, so each image's loss lies in [0, 1] whatever the number of sampled pixels.

The two differ by the per-image constant factor ``N / Q^2``. Every distinct label other than
``ignore_index`` is one group, background included (the paper embeds background pixels too).
Pairs ``i = j`` are included; they add 0 (a pixel is a positive pair with itself at ``s = 1``).

:class:`PixelEmbeddingLoss` samples pixels (the loss is ``O(N^2)``), optionally runs the
recurrent mean-shift grouping module and applies the same loss to every iteration's output
(Sec. 4.2), including the initial embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import (
    ShapeError,
    WrongTypeError,
    check_bool,
    check_choice,
    check_finite,
    check_float,
    check_positive_int,
    check_tensor,
)
from ..nn.mean_shift import RecurrentMeanShift

__all__ = ["PixelEmbeddingLoss", "instance_weights", "pairwise_embedding_loss", "sample_pixels"]

_NORMALIZE = ("instances", "paper")


def _check_labels(labels, name: str, ndim: int) -> None:
    if not isinstance(labels, torch.Tensor):
        raise WrongTypeError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise WrongTypeError(f"{name} must have an integer dtype, got {labels.dtype}")
    if labels.dim() != ndim:
        raise ShapeError(f"{name} must be {ndim}-D, got shape {tuple(labels.shape)}")


def _check_some_labelled(valid: torch.Tensor, ignore_index: int) -> None:
    """``valid``: (B, ...) bool; every image needs at least one labelled pixel."""
    empty = (~valid.flatten(1).any(dim=1)).nonzero()
    if len(empty):
        raise ValueError(f"labels: image {int(empty[0])} has no labelled pixel (all ignore_index={ignore_index})")


def instance_weights(labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Instance-aware pixel weights ``w_i = 1 / |I_q|`` (Sec. 3.1).

    Args:
        labels: ``(N,)`` integer group labels of the (sampled) pixels.
        ignore_index: label of pixels that take no part; their weight is 0.

    Returns:
        ``(N,)`` float32 weights; they sum to 1 over every group, so to ``Q`` in all.

    Example:
        >>> instance_weights(torch.tensor([0, 0, 0, 0, 7, 255])).tolist()
        [0.25, 0.25, 0.25, 0.25, 1.0, 0.0]
    """
    _check_labels(labels, "labels", 1)
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    w = 1.0 / counts.to(torch.float32)[inverse]
    return w.masked_fill(labels == ignore_index, 0.0)


def pairwise_embedding_loss(x: torch.Tensor, labels: torch.Tensor, alpha: float = 0.5, ignore_index: int = 255,
                            normalize: str = "instances") -> torch.Tensor:
    """Per-image pairwise embedding loss (module docstring) over all pairs of the given pixels.

    Args:
        x: ``(B, D, N)`` embeddings (normalised here; only directions matter).
        labels: ``(B, N)`` integer group labels; ``ignore_index`` pixels take no part.
        alpha: margin in [0, 1): negative pairs pay ``max(0, s - alpha)``, i.e. while their
            cosine exceeds ``2 alpha - 1``.
        ignore_index: label to ignore.
        normalize: ``"instances"`` (divide by ``Q^2``; loss in [0, 1]) or ``"paper"``
            (divide by the number of labelled pixels ``N``, Eq. 2).

    Returns:
        ``(B,)`` losses, one per image, differentiable w.r.t. ``x``.

    Example:
        >>> x = torch.tensor([[[1.0, 1.0, -1.0], [0.0, 0.0, 0.0]]])  # two pixels at +e1, one at -e1
        >>> pairwise_embedding_loss(x, torch.tensor([[1, 1, 2]]))
        tensor([0.])
    """
    check_tensor(x, "x", 3)
    _check_labels(labels, "labels", 2)
    if labels.shape != (x.shape[0], x.shape[2]):
        raise ValueError(f"labels must have shape (B, N) = {(x.shape[0], x.shape[2])} to match x "
                         f"{tuple(x.shape)}, got {tuple(labels.shape)}")
    check_float(alpha, "alpha", low=0, high=1, high_open=True)
    check_choice(normalize, "normalize", _NORMALIZE)
    check_finite(x, "x")
    valid = labels != ignore_index
    _check_some_labelled(valid, ignore_index)

    xn = F.normalize(x, dim=1)
    s = 0.5 * (1.0 + xn.transpose(1, 2) @ xn)  # (B, N, N)
    same = labels[:, :, None] == labels[:, None, :]
    # |I_q| among the given pixels. Ignored pixels (count 0, hence the clamp) get weight 0,
    # so all their pairs drop out.
    counts = (same & valid[:, None, :]).sum(dim=2)
    w = torch.where(valid, 1.0 / counts.clamp(min=1).to(x.dtype), torch.zeros((), dtype=x.dtype, device=x.device))
    pair_loss = torch.where(same, 1.0 - s, F.relu(s - alpha))
    total = torch.einsum("bi,bij,bj->b", w, pair_loss, w)
    if normalize == "paper":
        return total / valid.sum(dim=1).to(x.dtype)
    return total / w.sum(dim=1).square()  # sum_ij w_i w_j = (sum_i w_i)^2 = Q^2


def _check_embedding_labels(embedding, labels, ignore_index: int) -> None:
    check_tensor(embedding, "embedding", 4)
    _check_labels(labels, "labels", 3)
    if labels.shape[0] != embedding.shape[0] or labels.shape[1:] != embedding.shape[2:]:
        raise ValueError(f"embedding {tuple(embedding.shape)} and labels {tuple(labels.shape)} must have "
                         f"the same batch and spatial size")
    check_finite(embedding, "embedding")
    _check_some_labelled(labels != ignore_index, ignore_index)


def sample_pixels(embedding: torch.Tensor, labels: torch.Tensor, max_pixels: int, ignore_index: int = 255,
                  generator: torch.Generator | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Uniform random sample (without replacement) of up to ``max_pixels`` labelled pixels per image.

    Args:
        embedding: ``(B, D, H, W)`` float embeddings.
        labels: ``(B, H, W)`` integer labels; ``ignore_index`` pixels are never sampled.
        max_pixels: the cap; an image with fewer labelled pixels keeps all of them.
        ignore_index: label to skip.
        generator: random generator for the sample (its device is where the permutation is
            drawn); ``None`` uses the global CPU generator.

    Returns:
        One ``(x, y)`` per image: ``x`` ``(D, n)`` embeddings (differentiable), ``y`` ``(n,)``
        labels, ``n = min(max_pixels, labelled pixels of that image)``.

    Example:
        >>> emb, lab = torch.randn(2, 4, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)
        >>> [tuple(x.shape) for x, _ in sample_pixels(emb, lab, max_pixels=10)]
        [(4, 10), (4, 10)]
    """
    _check_embedding_labels(embedding, labels, ignore_index)
    check_positive_int(max_pixels, "max_pixels")
    flat_x, flat_y = embedding.flatten(2), labels.flatten(1)
    samples = []
    for b in range(embedding.shape[0]):
        idx = (flat_y[b] != ignore_index).nonzero().squeeze(1)
        if len(idx) > max_pixels:
            device = generator.device if generator is not None else "cpu"
            pick = torch.randperm(len(idx), generator=generator, device=device)[:max_pixels]
            idx = idx[pick.to(idx.device)]
        samples.append((flat_x[b][:, idx], flat_y[b][idx]))
    return samples


class PixelEmbeddingLoss(nn.Module):
    """Sampled pairwise embedding loss, optionally through recurrent mean-shift grouping.

    Per image, up to ``max_pixels`` labelled pixels are sampled (instance weights counted over
    the sample), the grouping module (if any) is run on them, and the loss is applied to the
    initial embedding and to every iteration's output. The per-iteration losses are averaged
    over the batch; :meth:`forward` sums them (``loss_at_every_iteration=True``, Sec. 4.2) or
    keeps the last one.

    Args:
        alpha: margin in [0, 1) (0.5 with D = 64 in the paper).
        max_pixels: pixels sampled per image (the loss and mean shift are ``O(N^2)``).
        ignore_index: label of unlabelled pixels.
        normalize: ``"instances"`` or ``"paper"``, see :func:`pairwise_embedding_loss`.
        mean_shift: a :class:`~pixelwise.nn.RecurrentMeanShift`, or ``None`` for the plain loss.
        loss_at_every_iteration: sum the losses of all iterations (``True``) or use the last.

    Shape:
        embedding ``(B, D, H, W)`` float, labels ``(B, H, W)`` integer; output a scalar.

    Example:
        >>> loss = PixelEmbeddingLoss(mean_shift=RecurrentMeanShift(iterations=2))
        >>> emb = torch.randn(2, 8, 16, 16, requires_grad=True)
        >>> lab = torch.randint(0, 3, (2, 16, 16))
        >>> len(loss.per_iteration(emb, lab)), loss(emb, lab).dim()
        (3, 0)
    """

    def __init__(self, alpha: float = 0.5, max_pixels: int = 2048, ignore_index: int = 255,
                 normalize: str = "instances", mean_shift: RecurrentMeanShift | None = None,
                 loss_at_every_iteration: bool = True):
        super().__init__()
        self.alpha = check_float(alpha, "alpha", low=0, high=1, high_open=True)
        self.max_pixels = check_positive_int(max_pixels, "max_pixels")
        self.normalize = check_choice(normalize, "normalize", _NORMALIZE)
        if mean_shift is not None and not isinstance(mean_shift, RecurrentMeanShift):
            raise WrongTypeError(f"mean_shift must be a RecurrentMeanShift or None, got {type(mean_shift).__name__}")
        self.loss_at_every_iteration = check_bool(loss_at_every_iteration, "loss_at_every_iteration")
        self.ignore_index = ignore_index
        self.mean_shift = mean_shift

    def _losses(self, embedding, labels, generator, last_only: bool) -> list[torch.Tensor]:
        samples = sample_pixels(embedding, labels, self.max_pixels, self.ignore_index, generator)
        per_image = []
        for x, y in samples:  # sample sizes differ between images: no batching
            states = [x[None]] if self.mean_shift is None else self.mean_shift(x[None])
            if last_only:
                states = states[-1:]
            per_image.append([pairwise_embedding_loss(s, y[None], self.alpha, self.ignore_index, self.normalize)[0]
                              for s in states])
        return [torch.stack(losses).mean() for losses in zip(*per_image)]

    def per_iteration(self, embedding: torch.Tensor, labels: torch.Tensor,
                      generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Batch-mean loss at every iteration.

        Args:
            embedding: ``(B, D, H, W)`` finite float embeddings.
            labels: ``(B, H, W)`` integer labels; every image needs a pixel not equal to
                ``ignore_index``.
            generator: random generator for the pixel sample.

        Returns:
            ``T + 1`` scalars, the loss on the initial embedding then after each of the ``T``
            mean-shift iterations (one scalar without mean shift or with ``T = 0``).
        """
        return self._losses(embedding, labels, generator, last_only=False)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The training loss: sum of :meth:`per_iteration` or, without
        ``loss_at_every_iteration``, its last entry. Arguments as in :meth:`per_iteration`.

        Returns:
            A scalar tensor.
        """
        if self.loss_at_every_iteration:
            return torch.stack(self.per_iteration(embedding, labels, generator)).sum()
        return self._losses(embedding, labels, generator, last_only=True)[0]

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha:g}, max_pixels={self.max_pixels}, ignore_index={self.ignore_index}, "
                f"normalize={self.normalize!r}, loss_at_every_iteration={self.loss_at_every_iteration}")

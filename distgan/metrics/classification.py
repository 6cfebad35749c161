"""Classification scores on a labelled test set: Top-1/Top-5 error and per-class accuracy.

Counts are summed across ranks with one all-reduce, so evaluation can be sharded exactly.
"""

from dataclasses import dataclass

import torch
import torch.distributed as dist

from distgan.runtime import distributed


@dataclass
class ClassificationCounts:
    """Per-class totals and correct predictions (top-1 and top-k)."""

    total_K: torch.Tensor  # int64
    top1_correct_K: torch.Tensor
    topk_correct_K: torch.Tensor
    k: int

    @classmethod
    def empty(cls, num_classes: int, k: int = 5) -> "ClassificationCounts":
        def zeros():
            return torch.zeros(num_classes, dtype=torch.int64)

        return cls(zeros(), zeros(), zeros(), min(k, num_classes))

    def update(self, logits_NK: torch.Tensor, labels_N: torch.Tensor) -> None:
        labels = labels_N.cpu()
        topk = logits_NK.detach().topk(self.k, dim=1).indices.cpu()
        num_classes = self.total_K.numel()
        self.total_K += torch.bincount(labels, minlength=num_classes)
        self.top1_correct_K += torch.bincount(labels[topk[:, 0] == labels], minlength=num_classes)
        self.topk_correct_K += torch.bincount(labels[(topk == labels[:, None]).any(dim=1)], minlength=num_classes)

    def all_reduce(self) -> None:
        """Sum the counts of every rank (no-op in a world of one): one all-reduce, on the device the process group
        serves (an NCCL group refuses the CPU tensors the counts are kept in)."""
        if distributed.world_size() == 1:
            return
        counts_3K = torch.stack([self.total_K, self.top1_correct_K, self.topk_correct_K])
        counts_3K = counts_3K.to(distributed.collective_device())
        dist.all_reduce(counts_3K)
        self.total_K, self.top1_correct_K, self.topk_correct_K = counts_3K.cpu().unbind()

    def scores(self) -> dict:
        """top1_error, top5_error (top-k with k = min(5, classes)) and per_class_accuracy, as plain floats."""
        total = int(self.total_K.sum())
        per_class = (self.top1_correct_K.double() / self.total_K.clamp(min=1).double()).tolist()
        return {
            "top1_error": 1 - int(self.top1_correct_K.sum()) / total,
            "top5_error": 1 - int(self.topk_correct_K.sum()) / total,
            "per_class_accuracy": per_class,
            "num_test_samples": total,
        }

"""Nearest neighbours of feature sets in tiles: the memorisation measures' one expensive step (memorisation.py).

Every query row's nearest reference row is found by `torch.cdist` over tiles of `block` queries × `block`
references, keeping a running minimum and its index, so memory is O(block² + R·D) whatever the set sizes: an
ImageNet-size N×M distance matrix (1.28 M², 6.5 TB in float64) is never made. Distances are float64 on the given
device (a GPU where the caller has one); ties keep the lowest reference index, as `torch.min` does on one matrix.
"""

import numpy as np
import torch

BLOCK_ROWS = 4096


@torch.inference_mode()
def nearest_neighbours(
    query_QD: torch.Tensor | np.ndarray,
    ref_RD: torch.Tensor | np.ndarray,
    *,
    exclude_self: bool = False,
    query_cells_Q: torch.Tensor | np.ndarray | None = None,
    ref_cells_R: torch.Tensor | np.ndarray | None = None,
    device: torch.device | str = "cpu",
    block: int = BLOCK_ROWS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each query row's nearest reference row, float64 and int64 on the CPU.

    `exclude_self`: the query set is the reference set and a row is not its own neighbour (a duplicate row still
    is). `query_cells_Q`/`ref_cells_R`: integer cell labels; a query only looks in its own cell, and a query whose
    cell holds no reference row gets distance inf and index -1."""
    assert (query_cells_Q is None) == (ref_cells_R is None), "cells are given for both sets or neither"
    assert not exclude_self or len(query_QD) == len(ref_RD), "exclude_self needs the reference set as the query"
    ref = torch.as_tensor(ref_RD).to(device, torch.float64)
    ref_cells = None if ref_cells_R is None else torch.as_tensor(ref_cells_R).to(device)
    best_dist, best_index = [], []
    for q0 in range(0, len(query_QD), block):
        query = torch.as_tensor(query_QD[q0 : q0 + block]).to(device, torch.float64)
        query_cells = None if query_cells_Q is None else torch.as_tensor(query_cells_Q[q0 : q0 + block]).to(device)
        dist = torch.full((len(query),), torch.inf, dtype=torch.float64, device=device)
        index = torch.full((len(query),), -1, dtype=torch.int64, device=device)
        for r0 in range(0, len(ref), block):
            tile = torch.cdist(query, ref[r0 : r0 + block])
            if exclude_self and r0 < q0 + len(query) and q0 < r0 + tile.shape[1]:
                rows = torch.arange(q0, q0 + len(query), device=device)
                inside = (rows >= r0) & (rows < r0 + tile.shape[1])
                tile[inside.nonzero().squeeze(1), rows[inside] - r0] = torch.inf
            if ref_cells is not None:
                tile.masked_fill_(query_cells[:, None] != ref_cells[None, r0 : r0 + block], torch.inf)
            tile_dist, tile_index = tile.min(dim=1)
            closer = tile_dist < dist  # strict: an earlier tile's equal distance (lower index) stays
            dist = torch.where(closer, tile_dist, dist)
            index = torch.where(closer, tile_index + r0, index)
        best_dist.append(dist.cpu())
        best_index.append(index.cpu())
    if not best_dist:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.int64)
    return torch.cat(best_dist), torch.cat(best_index)

"""Padding variable-length sequences into one tensor (torch.nn.utils.rnn.pad_sequence)."""

from __future__ import annotations

from graphnn.core.tensor import cat, full, stack


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"):
    """Sequences (L_i, *) stacked into (B, max L, *) (batch_first) or (max L, B, *), padded with padding_value."""
    seqs = list(sequences)
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    longest = max(s.shape[0] for s in seqs)
    rows = []
    for s in seqs:
        missing = longest - s.shape[0]
        if missing:
            pad = full((missing, *tuple(s.shape[1:])), padding_value, dtype=s.dtype)
            s = cat([s, pad] if padding_side == "right" else [pad, s], 0)
        rows.append(s)
    out = stack(rows, 0)
    return out if batch_first else out.transpose(0, 1)


__all__ = ["pad_sequence"]

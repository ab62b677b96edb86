"""FFT helpers shared by the synthetic degradations and the classic restorer."""

from __future__ import annotations


def fast_length(n: int) -> int:
    """The smallest 2-3-5-smooth integer >= n (a length the FFT handles fast)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


__all__ = ["fast_length"]

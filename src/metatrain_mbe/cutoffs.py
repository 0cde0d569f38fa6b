"""Distance cutoffs per body order (Å), the screening of a sub-cluster family.

A torch-free value shared by every layer (like :mod:`metatrain_mbe.errors`),
so that the command line checks ``--cutoff`` before torch loads. The
expansion (:mod:`metatrain_mbe.expansion.screening`) keeps a sub-cluster S of
m bodies when every two of its bodies are within R_m.

>>> cutoffs = Cutoffs.parse("3:8,4:6")
>>> cutoffs.at(2), cutoffs.at(3), cutoffs.at(5)
(inf, 8.0, 6.0)
>>> cutoffs
Cutoffs({3: 8.0, 4: 6.0})
>>> Cutoffs.parse("2.5").at(7)
2.5
>>> Cutoffs.parse("3:5,4:6")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: the cutoff of order 4 (6 Å) is larger than that of a lower order (5 Å); ...
"""

from __future__ import annotations

import math

__all__ = ["Cutoffs", "NEEDS_AN_ORDER"]

#: why a screened expansion without a largest order is refused (the family of
#: every order up to the cluster's size would be unbounded)
NEEDS_AN_ORDER = (
    "--cutoff screens a truncated expansion: give --variants K,..., --truncate K or --max-order K"
)


class Cutoffs:
    """Per-order distance cutoffs R_m (Å), non-increasing with the order.

    :param by_order: ``{m: R_m}`` for the orders that are screened (m >= 2);
        an order without an entry takes the cutoff of the closest lower order
        listed, and orders below the first listed are not screened.
    :raises ValueError: for a cutoff that is not a positive finite number, an
        order below 2, or a cutoff larger than the one of a lower order (the
        family would not be downward closed).
    """

    def __init__(self, by_order: dict[int, float]):
        items = sorted((int(m), float(r)) for m, r in by_order.items())
        previous = math.inf
        for m, r in items:
            if m < 2:
                raise ValueError(f"cutoffs screen orders >= 2, got order {m}")
            if not (r > 0 and math.isfinite(r)):
                raise ValueError(f"the cutoff of order {m} must be a positive distance, got {r}")
            if r > previous:
                raise ValueError(
                    f"the cutoff of order {m} ({r:g} Å) is larger than that of a lower "
                    f"order ({previous:g} Å); cutoffs must not grow with the order"
                )
            previous = r
        self.by_order = dict(items)

    @classmethod
    def parse(cls, text: str | float | None) -> Cutoffs:
        """One cutoff for every order >= 2 (``"3.5"``), or per order
        (``"3:8,4:6"``: order 3 within 8 Å, orders 4 and above within 6 Å;
        orders below the first listed are not screened). None or ``""``: no
        screening.

        :raises ValueError: for text of another form or bad cutoffs.
        """
        if text is None or str(text).strip() == "":
            return cls({})
        parts = str(text).split(",")
        by_order: dict[int, float] = {}
        for part in parts:
            order, _, radius = part.rpartition(":")
            try:
                by_order[int(order) if order else 2] = float(radius)
            except ValueError:
                raise ValueError(f"'{text}' is not a cutoff in Å such as 4.5 or 3:8,4:6") from None
        if len(by_order) != len(parts):
            raise ValueError(f"'{text}' gives an order twice")
        return cls(by_order)

    def at(self, order: int) -> float:
        """R_m of ``order`` (Å; inf when the order is not screened)."""
        below = [r for m, r in self.by_order.items() if m <= order]
        return below[-1] if below else math.inf

    @property
    def largest(self) -> float:
        """The largest finite cutoff (Å; 0 when nothing is screened): the pairs
        of bodies a screened enumeration must know."""
        return max(self.by_order.values(), default=0.0)

    def __bool__(self) -> bool:
        return bool(self.by_order)

    def __eq__(self, other) -> bool:
        return isinstance(other, Cutoffs) and self.by_order == other.by_order

    def __repr__(self) -> str:
        return f"Cutoffs({self.by_order})"

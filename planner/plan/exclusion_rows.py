"""The exclusions beside a result (``PlacementResult.exclusions``): every pruned pair as a row
``workload, user_region, site, offer, rule, reason``, read from the candidate set's
:class:`~planner.derive.candidates.ExclusionLog` columns on demand.

Millions of pairs at scale (2.8 M at 5000 x 300) would cost a dict apiece if materialised; this
sequence makes a row only when one is asked for, and writes ``exclusions.csv`` from the columns
(the same bytes as the rows through :func:`planner.plan.result.table_csv`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd

COLUMNS = ("workload", "user_region", "site", "offer", "rule", "reason")


class ExclusionRows(Sequence):
    """Rows of an exclusion log (anything with ``columns()``: workload, user_region, site,
    offer, reason lists of equal length); empty user region / offer read as None."""

    def __init__(self, log):
        self._cols = log.columns()
        self._rule: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._cols["reason"])

    def _rule_of(self, reason: str) -> str:
        rule = self._rule.get(reason)
        if rule is None:
            rule = self._rule[reason] = reason.split(":", 1)[0]
        return rule

    def _row(self, i: int) -> dict:
        c = self._cols
        return {"workload": c["workload"][i], "user_region": c["user_region"][i] or None, "site": c["site"][i],
                "offer": c["offer"][i] or None, "rule": self._rule_of(c["reason"][i]), "reason": c["reason"][i]}

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._row(i)

    def __iter__(self) -> Iterator[dict]:
        for i in range(len(self)):
            yield self._row(i)

    def to_csv(self, columns: Sequence[str] | None = None) -> str:
        """CSV text, the same as ``table_csv(list(self), COLUMNS)``, built column by column."""
        c = self._cols
        frame = pd.DataFrame({
            "workload": c["workload"],
            "user_region": [u or None for u in c["user_region"]],
            "site": c["site"],
            "offer": [o or None for o in c["offer"]],
            "rule": [self._rule_of(r) for r in c["reason"]],
            "reason": c["reason"],
        }, columns=list(COLUMNS))
        if columns is not None:
            frame = frame.reindex(columns=list(dict.fromkeys([*columns, *frame.columns])))
        return frame.to_csv(index=False, lineterminator="\n")

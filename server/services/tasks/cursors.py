"""A page's cursors, each encoded when it is read.

A keyset page names a cursor for each of its tasks, but most clients read only the nodes and
at most the last cursor (``pageInfo.endCursor``). Encoding every task's, with an edge made for
each, cost ~16,000 instructions a task of issue 17's typed page (17.2M -> 15.6M for 100,
``bench/instructions.py``'s ``graphql-page``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, overload

Item = TypeVar("Item")


class LazyCursors(Sequence[str], Generic[Item]):
    """The cursor of ``items[i]`` is ``encode(items[i])``, made when it is read."""

    def __init__(self, items: Sequence[Item], encode: Callable[[Item], str]) -> None:
        self._items = items
        self._encode = encode

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._encode(item) for item in self._items[index]]
        return self._encode(self._items[index])

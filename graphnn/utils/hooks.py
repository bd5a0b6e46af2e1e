"""torch.utils.hooks' RemovableHandle, for code that keeps hooks of its own in a dict: `h = RemovableHandle(hooks)`,
then `hooks[h.id] = fn`; h.remove() deletes the entry."""

from __future__ import annotations

from collections import OrderedDict

from graphnn.nn.modules.module import RemovableHandle as _ModuleHandle


class RemovableHandle(_ModuleHandle):
    def __init__(self, hooks_dict: OrderedDict, *, extra_dict=None):
        super().__init__(hooks_dict, None)
        self.extra_dicts = [extra_dict] if isinstance(extra_dict, dict) else list(extra_dict or ())

    def remove(self) -> None:
        super().remove()
        for d in self.extra_dicts:
            d.pop(self.id, None)


__all__ = ["RemovableHandle"]

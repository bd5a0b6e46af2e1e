"""The forward pre-hook shared by weight_norm and spectral_norm (the hook forms): module.<name> is a plain attribute
recomputed from other parameters before each call. While graphnn.compile traces, the attribute holds the symbolic
value only during the call and gets its previous (concrete) value back afterwards, so tracing leaves no symbolic
tensor on the module and changes no Python state; a compiled function (a training step) then sets it to the value
its call computed, as an eager forward leaves it."""

from __future__ import annotations

from graphnn.compiler import tracer as _tracer


class RecomputedAttr:
    """Base of the hook objects: subclasses define `name` and compute(module, training)."""

    name: str

    def compute(self, module, training: bool):
        raise NotImplementedError

    def install(self, module) -> None:
        self.handles = [module.register_forward_pre_hook(self), module.register_forward_hook(self._restore)]

    def uninstall(self) -> None:
        for h in self.handles:
            h.remove()

    @classmethod
    def remove_from(cls, module, name: str, what: str):
        """Undo the hook of this class for module.<name> (remove_weight_norm, remove_spectral_norm)."""
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, cls) and hook.name == name:
                hook.remove(module)
                hook.uninstall()
                return module
        raise ValueError(f"{what} of '{name}' not found in {module}")

    def __call__(self, module, inputs) -> None:
        tr = _tracer.current()
        value = self.compute(module, module.training)
        if tr is not None:
            self._saved = module.__dict__.get(self.name)
            tr.note_stored(module, self.name, value, self._saved)  # (a compiled step sets it at every call)
        object.__setattr__(module, self.name, value)

    def _restore(self, module, inputs, output) -> None:
        if _tracer.current() is not None and getattr(self, "_saved", None) is not None:
            object.__setattr__(module, self.name, self._saved)
            self._saved = None

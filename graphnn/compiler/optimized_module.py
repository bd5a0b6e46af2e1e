"""What `graphnn.compile(module)` returns: a Module wrapping the compiled module, as torch.compile's OptimizedModule.

The original module is the child `_orig_mod`, so the wrapper's parameters, state_dict keys and repr carry the
`_orig_mod.` prefix as in PyTorch; train()/eval()/to() return the wrapper; it can be a child of another module
(`model.blocks[i] = graphnn.compile(block)`). Calling it runs the compiled forward (program.CompiledModule, the
engine); attributes it does not have are looked up on the original module, then on the engine (`last`, `cache`).
"""

from __future__ import annotations

from graphnn.nn.modules.module import Module

from .program import CompiledModule


class OptimizedModule(Module):
    def __init__(
        self,
        module: Module,
        name: str | None = None,
        max_specializations: int | None = None,
        dynamic=None,
        fullgraph=False,
    ):
        super().__init__()
        scope = module.__dict__.get("_scope_name")
        self._orig_mod = module
        object.__setattr__(module, "_scope_name", scope)  # its ops keep their module names ("Net.conv1")
        object.__setattr__(self, "_compiled", CompiledModule(module, name, max_specializations, dynamic, fullgraph))

    @property
    def training(self) -> bool:
        """The original module's flag (switched directly, `model.eval()`, it shows here too, as in PyTorch)."""
        orig = self.__dict__.get("_modules", {}).get("_orig_mod")
        return orig.training if orig is not None else self.__dict__.get("_training", True)

    @training.setter
    def training(self, mode: bool) -> None:
        orig = self.__dict__.get("_modules", {}).get("_orig_mod")
        if orig is not None:
            orig.training = mode
        self.__dict__["_training"] = mode

    def forward(self, *args, **kwargs):
        return self.__dict__["_compiled"](*args, **kwargs)

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        if (
            d.get("_forward_pre_hooks")
            or d.get("_forward_hooks")
            or d.get("_backward_pre_hooks")
            or d.get("_backward_hooks")
        ):
            return Module.__call__(self, *args, **kwargs)  # hooks registered on the wrapper itself
        return d["_compiled"](*args, **kwargs)

    def __getstate__(self) -> dict:
        """Pickled and deep-copied (copy.deepcopy, AveragedModel) without native code: the copy compiles its own
        copy of the original with the same options."""
        state = self.__dict__.copy()
        c = state.pop("_compiled")
        state["_compile_options"] = (c.name, c.cache.limit, c.dynamic, c.fullgraph)
        return state

    def __setstate__(self, state: dict) -> None:
        options = state.pop("_compile_options")
        self.__dict__.update(state)
        object.__setattr__(self, "_compiled", CompiledModule(self.__dict__["_modules"]["_orig_mod"], *options))

    @property
    def graphs(self) -> dict:
        """IR of the most recent call (see CompiledFunction.graphs)."""
        return self.__dict__["_compiled"].graphs

    @property
    def max_specializations(self) -> int:
        return self.__dict__["_compiled"].max_specializations

    @max_specializations.setter
    def max_specializations(self, n: int) -> None:
        self.__dict__["_compiled"].max_specializations = n

    def __getattr__(self, name):
        try:
            return Module.__getattr__(self, name)
        except AttributeError:
            pass
        d = self.__dict__
        if "_compiled" not in d:  # (during __init__, or an unpickled shell)
            raise AttributeError(f"'OptimizedModule' object has no attribute '{name}'")
        try:
            return getattr(d["_modules"]["_orig_mod"], name)
        except AttributeError:
            pass
        try:
            return getattr(d["_compiled"], name)
        except AttributeError:
            raise AttributeError(f"'OptimizedModule' object has no attribute '{name}'") from None

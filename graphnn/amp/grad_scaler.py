"""Loss scaling against underflowing gradients, with PyTorch's GradScaler rules (on the CPU)."""

from __future__ import annotations

import warnings

import numpy as np

from graphnn.core.grad_mode import no_grad

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


def _scaled(outputs, scale: float):
    """outputs (a tensor or nested lists/tuples of them) times scale."""
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_scaled(o, scale) for o in outputs)
    return outputs * scale


class GradScaler:
    """`torch.amp.GradScaler(device='cuda', init_scale=2**16, growth_factor=2, backoff_factor=0.5,
    growth_interval=2000, enabled=True)`.

    Disabled (or asked for CUDA, which is absent: warned and disabled, as PyTorch does without CUDA) every method
    passes through: `scale(loss)` is loss, `step(opt)` is `opt.step()`. Enabled on the CPU: `scale` multiplies by
    the scale, `unscale_` divides the gradients by it and notes whether any is Inf or NaN, `step` then skips the
    update, and `update` backs the scale off after such a step or grows it after growth_interval clean ones. The
    checks read gradient values, so an enabled scaler runs in eager code, not inside graphnn.compile."""

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ):
        self._device = str(device)
        self._enabled = bool(enabled)
        if self._enabled and self._device != "cpu":
            warnings.warn(f"GradScaler is enabled, but {self._device} is not available.  Disabling.", stacklevel=2)
            self._enabled = False
        if self._enabled:
            assert growth_factor > 1.0, "The growth factor must be > 1.0."
            assert backoff_factor < 1.0, "The backoff factor must be < 1.0."
        self._scale = float(np.float32(init_scale))
        self._growth_factor, self._backoff_factor = growth_factor, backoff_factor
        self._growth_interval, self._growth_tracker = growth_interval, 0
        self._per_optimizer: dict = {}  # id(optimizer) -> {"stage", "found_inf"}

    def is_enabled(self) -> bool:
        return self._enabled

    def _opt_state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": None})

    def scale(self, outputs):
        """outputs times the current scale (unchanged when disabled)."""
        return _scaled(outputs, self._scale) if self._enabled else outputs

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of optimizer's parameters by the scale, in place, noting Inf/NaN among them."""
        if not self._enabled:
            return
        from graphnn.compiler import tracer

        if tracer.current() is not None:  # (a TraceError: a compiled step with a scaler runs eagerly)
            from graphnn.core.tensor import TraceError

            raise TraceError(
                "GradScaler(enabled=True) decides from gradient values whether to step: call it outside "
                "graphnn.compile (or pass enabled=False, which compiles)"
            )
        state = self._opt_state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv = float(np.float32(1.0 / self._scale))
        found = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        found = found or not bool(np.isfinite(p.grad.numpy()).all())
                        p.grad.mul_(inv)
        state["stage"], state["found_inf"] = _UNSCALED, found

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(...), unless the unscaled gradients hold Inf or NaN (then the step is skipped: None)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        state = self._opt_state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale=None) -> None:
        """Set the scale for the next iteration: new_scale if given, else backed off after a skipped step or
        grown after growth_interval steps without Inf/NaN."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(np.float32(new_scale if isinstance(new_scale, (int, float)) else new_scale.item()))
        else:
            found = [s["found_inf"] for s in self._per_optimizer.values() if s["found_inf"] is not None]
            assert found, "No inf checks were recorded prior to update."
            if any(found):
                self._scale = float(np.float32(self._scale) * np.float32(self._backoff_factor))
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale = float(np.float32(self._scale) * np.float32(self._growth_factor))
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def state_dict(self) -> dict:
        """PyTorch's keys; empty when disabled."""
        if not self._enabled:
            return {}
        return {
            "scale": self.get_scale(),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler."
            )
        self._scale = float(np.float32(state_dict["scale"]))
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._growth_tracker = state_dict["_growth_tracker"]

"""graphnn.profiler: torch.profiler for graphnn programs. Records record_function regions and graphnn's ops
(eager ops as they compute, traced ops while graphnn.compile traces; a compiled call's native code is one
region: wrap it in record_function), reports key_averages().table() and Chrome traces."""

from .chrome_trace import tensorboard_trace_handler
from .profile import ProfilerAction, ProfilerActivity, profile, record_function, schedule, supported_activities

__all__ = [
    "ProfilerAction",
    "ProfilerActivity",
    "profile",
    "record_function",
    "schedule",
    "supported_activities",
    "tensorboard_trace_handler",
]

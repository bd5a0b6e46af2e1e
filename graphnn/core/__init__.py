"""The tensor and what every op goes through: dispatch (eager execution and IR recording), grad modes, dtypes, random numbers, attribute helpers."""

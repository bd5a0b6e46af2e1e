"""graphnn.compile: tracing Python code into IR (tracer, pytrees, guards), the compiled programs, scan."""

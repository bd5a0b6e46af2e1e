"""graphnn.tools: the graphnn command-line program."""

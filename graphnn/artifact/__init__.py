"""graphnn.export / graphnn.load: native artifacts that run without the model's source."""

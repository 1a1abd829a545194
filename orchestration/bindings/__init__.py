"""Functions' storage-binding semantics (blob, table, queue), shared by the local host for
ordinary functions and by the engine for activities."""

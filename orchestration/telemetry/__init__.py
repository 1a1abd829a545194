"""Traces, metrics and log correlation through OpenTelemetry's API.

`links` is pure (the ids an instance's spans hang on, stored as text); `tracing` writes the
spans; `metrics` the instruments; `logs` adds trace and span ids to the engine's log lines.
Nothing here runs unless the app configures an OpenTelemetry SDK provider.
"""

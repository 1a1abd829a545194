"""The management HTTP API: Durable Functions' instance API, Dapr's workflow API, OpenAPI."""

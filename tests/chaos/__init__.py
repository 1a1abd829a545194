"""The torture harness: kill hosts, restart storage, and check the engine's rules after."""

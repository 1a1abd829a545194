"""The soak run (`make soak`): steady mixed load on a few hosts, throughput and memory over time."""

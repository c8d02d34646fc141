"""Storage backends for durable queues, one module per backend, imported lazily by scheme."""

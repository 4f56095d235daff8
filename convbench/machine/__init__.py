"""Everything about the host: thread pools, memory, the allocator's policy, metadata for env.json."""

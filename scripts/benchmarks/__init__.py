"""dbproc benchmarks (run them with ``scripts/bench``): controller overhead against the
physical limit, commands on a large archive, and ingest throughput."""

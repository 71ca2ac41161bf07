"""memcubed benchmarks: ``make bench`` (``python -m bench``) writes JSON to bench/results/."""

"""Performance benchmarks of the tuning against scikit-learn; see README.md."""

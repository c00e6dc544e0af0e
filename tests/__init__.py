"""The test suite, a package so that it and benchmarks/ import tests.support by its name."""

"""Running a search: the loop, the evaluator contract and its evaluators, executors (local
pool, Ray), the trial store, the search's outputs and report, and the configuration that
ties them together."""

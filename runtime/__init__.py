"""The nasforge runtime: datasets, training recipes, rewards, ONNX export; the search
package (loop, evaluators, executors, store, Ray backend, reports) and the CLI package."""

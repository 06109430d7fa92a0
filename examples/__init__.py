"""examples: run each as a module from the repo's root, `python -m examples.NAME`."""

"""Image classification: the built-in algorithm's and the dog-breed workflow's task."""

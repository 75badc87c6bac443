"""What the engine needs from the machine it runs on, below both the maths and the workers.

- `devices`: `configure_tensorflow`, the thread counts and GPU memory growth a process sets before
  TensorFlow's first op (the CLI, benchmarks and every worker).
- `files`: writing a file atomically and durably (images, weights, a worker's copies of its inputs).

Imports nothing else of the engine, so every part of it may import this.
"""

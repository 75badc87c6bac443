"""Old path, kept until bot/ imports the new one: `engine.weights` and `engine.weights.fetch`."""

import sys

from engine.weights.cache import decoder_path, load_weights
from engine.weights.fetch import fetch_weights, main

__all__ = ["decoder_path", "fetch_weights", "load_weights", "main"]

if __name__ == "__main__":
    sys.exit(main())

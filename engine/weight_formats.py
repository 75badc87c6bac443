"""Old path, kept until bot/ imports the new one: `engine.weights` (or `engine.weights.formats`)."""

from engine.weights.formats import load_decoder, load_vgg

__all__ = ["load_decoder", "load_vgg"]

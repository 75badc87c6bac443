"""Neural style transfer: the Gatys et al. VGG-19 optimisation on TensorFlow 2.

Importing this package does no work and loads no TensorFlow; the modules that need it import it.
"""

"""Neural style transfer: the Gatys et al. VGG-19 optimisation on TensorFlow 2.

Three audiences share this package, on one layer below them all:

- `host/`: what every part takes from the machine: TensorFlow's threads and devices, atomic file writes.
- The maths, flat here and read top to bottom as one pipeline: `params` (the settings), `precision`
  (float32 or bfloat16 convolutions), `images` and `inputs` (pictures in and out), `vgg` (the network),
  `objective` and `compiled` (the losses), `lbfgs` (on the device; `lbfgs_scipy` is the tests'
  reference) and `multiscale` (coarse to fine), `memory` (what a size needs), `budget` (what a
  painting costs, the size a time allows), `stylize` (the optimisation), `pace` (how fast this host
  paints, timed through it), `adain` (the one-pass stylisation and start). `cli` is its command line,
  `doctor` its check of a host.
- `weights/`: the networks' weights, every file format behind one loader, the cache and its fetch.
- `workers/`: running jobs in worker processes or Ray actors for the bot, and in process for tests.

Importing this package does no work and loads no TensorFlow; the modules that need it import it.
"""

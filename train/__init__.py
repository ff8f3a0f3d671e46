"""LLaVA-style two-stage trainer over svit configs (DESIGN.md §8).

Modules, one concept each: config (TrainConfig), model (assembly/loading), stages (what is trained),
data / encode / images / dataset / collate / sampler (the data path), loop, distributed, checkpoint,
generate, cli. Importing this package does not import torch; the CLI explains how to install it.
"""

"""svit: the SVIT visual instruction data (arXiv 2307.04087) as a tested dataset library.

Importing this package is cheap: it pulls in none of torch, transformers or openai.
"""

__version__ = "0.1.0"

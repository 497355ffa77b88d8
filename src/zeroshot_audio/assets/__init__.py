"""Pretrained weights: where they come from, fetch, verify (YAMNet, MiniLM), and the shipped model (``default/``).

:mod:`zeroshot_audio.assets.fetch` sets up the weights in the cache; this package imports nothing itself.
"""

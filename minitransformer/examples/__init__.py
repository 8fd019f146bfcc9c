"""Complete programs that use the library end to end.

* :mod:`.seed_classifier` -- the document's section 5 text classifier, done properly
  (``python -m minitransformer.examples.seed_classifier``).
"""

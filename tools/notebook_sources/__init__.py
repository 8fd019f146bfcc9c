"""The cells of the step-through notebooks, one module per notebook (``CELLS``); ``tools/make_notebooks.py``
builds, runs and writes them."""

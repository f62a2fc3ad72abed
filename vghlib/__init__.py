"""vghlib: the library behind vgh-book.

One module per idea of "Value-Gradient Hypothesis of RL for LLMs" (Asadulaev, Ognev, Salta,
Takac; arXiv 2605.21654). Modules are imported on demand (``from vghlib import impact``), so
``import vghlib`` stays light and does not pull in torch.
"""

__version__ = "0.1.0"

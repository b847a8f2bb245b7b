# expect: static: line 9: syntax error
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Broken(Strategy):
    name = "syntax_error
    category = "trend"

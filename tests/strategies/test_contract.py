"""The strategy contract: parameters, output validation, loading, the signal_fn adapter."""
from __future__ import annotations

import hashlib
import textwrap

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.strategies import (
    Strategy,
    code_hash,
    load_strategy_file,
    load_strategy_source,
    signal_fn,
    validate_signals,
    validate_strategy_class,
)
from tests.strategies._candles import make_candles


class Echo(Strategy):
    """Returns whatever the test put in `self.output` (a function of the candles)."""

    name = "echo"
    category = "trend"
    params = {"window": 5, "scale": 0.5, "label": "x"}
    param_space = {"window": (2, 50), "scale": (0.0, 1.0)}
    output = staticmethod(lambda candles: pd.Series(0.0, index=candles.index))

    def generate_signals(self, candles):
        return type(self).output(candles)


def echo_of(fn):
    return type("EchoOf", (Echo,), {"output": staticmethod(fn)})()


CANDLES = make_candles([10.0, 11.0, 12.0, 11.0, 10.0])


# --- parameters ----------------------------------------------------------------------
def test_params_merge_into_a_copy_of_the_defaults():
    strategy = Echo({"window": 7})
    assert strategy.params == {"window": 7, "scale": 0.5, "label": "x"}
    assert Echo.params["window"] == 5  # class defaults untouched
    assert Echo().params == Echo.params and Echo().params is not Echo.params


def test_unknown_parameter_is_rejected_naming_the_strategy():
    with pytest.raises(StrategyError, match=r"strategy 'echo': unknown parameter\(s\) speed"):
        Echo({"speed": 3})


@pytest.mark.parametrize("params, message", [
    ({"window": 51}, r"'window'=51 outside its range \[2, 50\]"),
    ({"window": 1}, r"'window'=1 outside its range"),
    ({"scale": 1.5}, r"'scale'=1.5 outside its range \[0.0, 1.0\]"),
    ({"window": 7.5}, r"'window' must be an integer"),
    ({"window": "7"}, r"'window' must be a number"),
    ({"window": True}, r"'window' must be a number"),
])
def test_out_of_space_values_are_rejected(params, message):
    with pytest.raises(StrategyError, match=message):
        Echo(params)


def test_integral_floats_become_ints_and_unranged_params_pass_through():
    strategy = Echo({"window": 8.0, "scale": 1, "label": "anything"})
    assert strategy.params["window"] == 8 and isinstance(strategy.params["window"], int)
    assert isinstance(strategy.params["scale"], float)
    assert strategy.params["label"] == "anything"


def test_class_contract_problems_are_listed():
    bad = type("Bad", (Echo,), {
        "name": "bad", "category": "astrology",
        "params": {"a": 500}, "param_space": {"a": (1, 10), "b": (0, 1)},
    })
    with pytest.raises(StrategyError) as info:
        validate_strategy_class(bad)
    text = str(info.value)
    assert "strategy 'bad' breaks the contract" in text
    assert "category 'astrology' is not one of" in text
    assert "param_space key 'b' has no default" in text
    assert "'a'=500 outside its range" in text
    with pytest.raises(StrategyError, match="name"):
        validate_strategy_class(type("NoName", (Echo,), {"name": ""}))
    assert validate_strategy_class(Echo) is Echo


# --- output validation ------------------------------------------------------------------
def test_leading_warm_up_nan_becomes_flat_and_the_result_is_float64_named():
    out = echo_of(lambda c: pd.Series([np.nan, np.nan, 1.0, -0.5, 0.0],
                                      index=c.index)).signals(CANDLES)
    assert out.tolist() == [0.0, 0.0, 1.0, -0.5, 0.0]
    assert out.dtype == np.float64 and out.name == "echo"
    assert out.index.equals(CANDLES.index)


def test_bool_and_int_outputs_are_converted():
    out = echo_of(lambda c: c["close"] > 10.5).signals(CANDLES)
    assert out.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    out = echo_of(lambda c: pd.Series([0, 1, -1, 1, 0], index=c.index)).signals(CANDLES)
    assert out.dtype == np.float64 and out.tolist() == [0, 1, -1, 1, 0]


@pytest.mark.parametrize("fn, message", [
    (lambda c: pd.Series([0, 1, np.nan, 1, 0.0], index=c.index),
     r"returned NaN at bar 2 \(2024-01-01 02:00:00\+00:00\) after its warm-up"),
    (lambda c: c["close"] * np.nan, "returned NaN on every bar"),
    (lambda c: pd.Series([0, 1, np.inf, 1, 0.0], index=c.index), "infinite value at bar 2"),
    (lambda c: pd.Series([0, 1, 1.5, 1, 0.0], index=c.index),
     r"returned 1.5 at bar 2 .* outside \[-1, 1\]"),
    (lambda c: c["close"].iloc[1:], "returned 4 values for 5 candles"),
    (lambda c: c["close"].reset_index(drop=True), "index is not the candles' index"),
    (lambda c: c["close"].to_numpy(), "returned ndarray, expected a pandas Series"),
    (lambda c: c, "returned DataFrame, expected a pandas Series"),
    (lambda c: pd.Series(["a"] * 5, index=c.index), "non-numeric signals"),
    (lambda c: 1 / 0, "failed in generate_signals: ZeroDivisionError"),
    (lambda c: (_ for _ in ()).throw(SystemExit(4)), "failed in generate_signals: SystemExit: 4"),
])
def test_bad_output_is_a_strategy_error_naming_the_strategy(fn, message):
    with pytest.raises(StrategyError, match=message) as info:
        echo_of(fn).signals(CANDLES)
    assert "strategy 'echo'" in str(info.value)


def test_tiny_float_overshoot_is_clipped_not_rejected():
    out = validate_signals(pd.Series([1 + 1e-12, -1 - 1e-12, 0, 0, 0.0], index=CANDLES.index),
                           CANDLES, "x")
    assert out.tolist() == [1.0, -1.0, 0, 0, 0]


def test_a_strategy_cannot_change_the_callers_candles():
    def mutate(candles):
        candles["close"] = 0.0
        candles["extra"] = 1.0
        return pd.Series(0.0, index=candles.index)

    frame = CANDLES.copy()
    echo_of(mutate).signals(frame)
    assert frame.equals(CANDLES)


def test_strategy_errors_chain_the_original_exception():
    with pytest.raises(StrategyError) as info:
        echo_of(lambda c: c["nope"]).signals(CANDLES)
    assert isinstance(info.value.__cause__, KeyError)


# --- signal_fn ------------------------------------------------------------------------
def test_signal_fn_adapter_builds_with_params_and_validates():
    fn = signal_fn(Echo)
    assert fn.strategy_cls is Echo
    assert fn(CANDLES, {"window": 3}).tolist() == [0.0] * 5
    with pytest.raises(StrategyError, match="unknown parameter"):
        fn(CANDLES, {"bogus": 1})
    with pytest.raises(StrategyError):
        signal_fn(int)


# --- loading -----------------------------------------------------------------------------
SOURCE = textwrap.dedent('''
    import numpy as np
    import pandas as pd
    from blofin_pipeline.strategies import Strategy

    class Up(Strategy):
        name = "up"
        category = "momentum"
        params = {"n": 1}
        param_space = {"n": (1, 10)}

        def generate_signals(self, candles):
            return np.sign(candles["close"].diff(self.params["n"])).fillna(0.0)
''')


def test_load_strategy_source_returns_the_one_class():
    cls = load_strategy_source(SOURCE, origin="up.py")
    assert issubclass(cls, Strategy) and cls.name == "up"
    assert cls.source_hash == hashlib.sha256(SOURCE.encode()).hexdigest()
    assert cls().signals(CANDLES).tolist() == [0, 1, 1, -1, -1]


def test_each_load_gets_a_fresh_namespace():
    first, second = load_strategy_source(SOURCE), load_strategy_source(SOURCE)
    assert first is not second
    first.params["n"] = 3
    assert second.params["n"] == 1


@pytest.mark.parametrize("code, message", [
    (SOURCE + SOURCE.replace("class Up", "class Down").split("from blofin")[1]
     .split("\n", 1)[1], r"exactly one Strategy subclass, found 2 \(Up, Down\)"),
    ("import numpy as np\n", r"exactly one Strategy subclass, found 0 \(none\)"),
    ("def f(:\n", "syntax error at line 1"),
    ("raise ValueError('boom')", "failed to load: ValueError: boom"),
    ("raise SystemExit(2)", "failed to load: SystemExit: 2"),
    (SOURCE.replace('"momentum"', '"astrology"'), "category 'astrology'"),
])
def test_load_errors(code, message):
    with pytest.raises(StrategyError, match=message):
        load_strategy_source(code, origin="bad.py")


def test_imported_strategy_classes_do_not_count():
    code = SOURCE + "\nfrom blofin_pipeline.strategies.builtin.ema_cross import EmaCross\n"
    assert load_strategy_source(code).name == "up"


def test_load_strategy_file(tmp_path):
    path = tmp_path / "up.py"
    path.write_text(SOURCE)
    assert load_strategy_file(path).name == "up"
    with pytest.raises(StrategyError, match="could not be read"):
        load_strategy_file(tmp_path / "missing.py")


def test_code_hash_is_sha256_of_utf8():
    assert code_hash("é") == hashlib.sha256("é".encode()).hexdigest()
    assert code_hash("a") != code_hash("a ")

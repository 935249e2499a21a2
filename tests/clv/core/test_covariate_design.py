"""Covariate design matrices from customer attributes: kinds, reference levels, centring,
missing values at fit time (an error counting them) and at prediction (the baseline)."""

from __future__ import annotations

import numpy as np
import pytest
from nextbest_clv.core.covariate_design import (
    MAX_LEVELS,
    CovariateDataError,
    MissingCovariatesError,
    design_matrix,
    learn_encoding,
    missing_attributes,
)

CUSTOMERS = [
    {"channel": "web", "value": 10.0, "vip": True},
    {"channel": "shop", "value": 20, "vip": False},
    {"channel": "web", "value": 30.0, "vip": False},
    {"channel": "phone", "value": 40, "vip": False},
]


def test_numeric_centred_categorical_one_hot_with_the_most_frequent_as_reference() -> None:
    encoding = learn_encoding(CUSTOMERS, ["channel", "value", "vip"])
    assert encoding == [
        {"name": "channel", "kind": "categorical", "reference": "web", "levels": ["phone", "shop"]},
        {"name": "value", "kind": "numeric", "mean": 25.0},
        {"name": "vip", "kind": "categorical", "reference": False, "levels": [True]},
    ]
    design = design_matrix(CUSTOMERS, encoding)
    assert design.names == ("channel=phone", "channel=shop", "value", "vip=True")
    np.testing.assert_array_equal(
        design.matrix,
        [[0, 0, -15, 1], [0, 1, -5, 0], [0, 0, 5, 0], [1, 0, 15, 0]],
    )
    assert design.imputed == {}


def test_prediction_gives_the_baseline_to_missing_and_unseen_values() -> None:
    encoding = learn_encoding(CUSTOMERS, ["channel", "value", "vip"])
    new = [None, {"channel": "fax", "value": 25.0, "vip": 1}, {"channel": "shop"}]
    design = design_matrix(new, encoding)
    np.testing.assert_array_equal(design.matrix, [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    # the number 1 is not the boolean level True
    assert design.imputed == {"channel": 2, "value": 2, "vip": 3}


def test_ties_go_to_the_first_level_in_sort_order() -> None:
    encoding = learn_encoding([{"r": "b"}, {"r": "a"}], ["r"])
    assert encoding == [{"name": "r", "kind": "categorical", "reference": "a", "levels": ["b"]}]


def test_missing_attributes_at_fit_time_are_counted_per_attribute() -> None:
    customers = [*CUSTOMERS, {"channel": "web"}, None, {"channel": None, "value": 1}]
    with pytest.raises(MissingCovariatesError) as raised:
        learn_encoding(customers, ["channel", "value"])
    assert raised.value.missing == {"channel": 2, "value": 2}
    assert str(raised.value) == "of 7 customers, 2 lack 'channel', 2 lack 'value'"
    lacking = missing_attributes(customers, ["channel", "value"])
    assert lacking.tolist() == [False, False, False, False, True, True, True]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([1, "a", 2], "mixes numbers (2 customers) with text or booleans (1)"),
        ([3.0, 3, 3.0], "has the same value (3) for every customer"),
        (["a", "a"], "has one level ('a') for every customer"),
        ([f"l{i}" for i in range(MAX_LEVELS + 1)], f"has {MAX_LEVELS + 1} levels"),
    ],
)
def test_unusable_attributes_are_refused_with_the_reason(values: list, reason: str) -> None:
    with pytest.raises(CovariateDataError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        learn_encoding([{"x": v} for v in values], ["x"])

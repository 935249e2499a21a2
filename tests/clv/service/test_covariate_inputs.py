"""A fit's covariates from the stored customer attributes: the missing policy (an error
counting who lacks what, or excluding them with the reason), encodings learned from the kept
customers (spend from the repeat buyers only), the same columns when predicting."""

from __future__ import annotations

import numpy as np
import pytest
from nextbest_clv.errors import ModelFitError
from nextbest_clv.service.covariate_inputs import fit_covariates, prediction_covariates
from nextbest_clv.service.settings import CovariateSettings

from nextbest.store import Store

IDS = ["c1", "c2", "c3", "c4", "c5"]


@pytest.fixture
def attributes(store: Store) -> None:
    store.put_customer_attributes(
        "acme",
        {
            "c1": {"channel": "web", "value": 10},
            "c2": {"channel": "shop", "value": 20},
            "c3": {"channel": "web", "value": 30},
            "c4": {"channel": "web"},
        },
    )
    store.put_customer_attributes("globex", {"c5": {"channel": "web", "value": 1}})


def test_missing_attributes_refuse_the_fit_naming_the_counts(
    store: Store, attributes: None
) -> None:
    settings = CovariateSettings(purchase=("channel",), dropout=("value",))
    with pytest.raises(ModelFitError) as raised:
        fit_covariates(store, "acme", IDS, settings)
    message = str(raised.value)
    assert "of 5 customers, 1 lack 'channel', 2 lack 'value'" in message
    assert "nextbest ingest --customers" in message and "'exclude'" in message


def test_exclude_policy_leaves_them_out_with_the_reason(store: Store, attributes: None) -> None:
    settings = CovariateSettings(
        purchase=("channel",), dropout=("value",), spend=("channel",), missing="exclude"
    )
    fitted = fit_covariates(store, "acme", IDS, settings)
    assert fitted.keep.tolist() == [True, True, True, False, False]
    assert fitted.excluded == {
        "c4": "lacks covariate attributes 'value'",
        "c5": "lacks covariate attributes 'channel', 'value'",
    }
    assert fitted.encodings["purchase"] == [
        {"name": "channel", "kind": "categorical", "reference": "web", "levels": ["shop"]}
    ]
    assert fitted.encodings["dropout"] == [{"name": "value", "kind": "numeric", "mean": 20.0}]
    np.testing.assert_array_equal(fitted.designs["purchase"].matrix, [[0], [1], [0]])
    np.testing.assert_array_equal(fitted.designs["dropout"].matrix, [[-10], [0], [10]])
    assert fitted.designs["spend"].names == ("channel=shop",)

    # predictions: the same columns; a customer lacking an attribute gets the baseline
    designs = prediction_covariates(store, "acme", ["c4", "c2", "new"], fitted.encodings)
    np.testing.assert_array_equal(designs["purchase"].matrix, [[0], [1], [0]])
    np.testing.assert_array_equal(designs["dropout"].matrix, [[0], [0], [0]])
    assert designs["dropout"].imputed == {"value": 2}


def test_spend_attributes_are_needed_only_from_repeat_buyers(
    store: Store, attributes: None
) -> None:
    settings = CovariateSettings(spend=("value",))
    repeat = np.array([True, True, True, False, False])
    fitted = fit_covariates(store, "acme", IDS, settings, spend_mask=repeat)
    assert fitted.keep.all() and fitted.excluded == {}
    assert fitted.encodings["spend"] == [{"name": "value", "kind": "numeric", "mean": 20.0}]
    assert fitted.designs["purchase"].matrix.shape == (5, 0)
    with pytest.raises(ModelFitError, match="of 5 customers, 2 lack 'value'"):
        fit_covariates(store, "acme", IDS, settings)


def test_unusable_attribute_and_nobody_left(store: Store, attributes: None) -> None:
    store.put_customer_attributes("acme", {"c1": {"channel": "web", "value": "ten"}}, merge=True)
    with pytest.raises(ModelFitError, match="attribute 'value' mixes numbers"):
        fit_covariates(store, "acme", IDS[:3], CovariateSettings(purchase=("value",)))
    with pytest.raises(ModelFitError, match="none of its 2 customers has every covariate"):
        fit_covariates(
            store, "acme", ["x", "y"], CovariateSettings(purchase=("value",), missing="exclude")
        )

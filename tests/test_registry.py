"""Registry contract: names, errors, config recorded on the model."""

import pytest

from geohsr.exceptions import GeoHSRError, ModelError
from geohsr.models import create_model, list_models, register_model


def test_builtin_models_are_registered():
    names = list_models()
    for name in ("mxr_unet18", "mxr_unet34", "mxr_unet50", "resnet_unet34", "linear", "rpr2"):
        assert name in names


def test_unknown_model_names_the_choices():
    with pytest.raises(ModelError, match="mxr_unet18"):
        create_model("no_such_model")


def test_bad_override_is_a_model_error():
    with pytest.raises(ModelError, match="bad configuration"):
        create_model("mxr_unet18", no_such_option=1)


def test_created_model_records_name_and_config():
    model = create_model("mxr_unet18", width=0.125)
    assert model.geohsr_name == "mxr_unet18"
    assert model.geohsr_config == {"width": 0.125}


def test_duplicate_registration_is_refused():
    with pytest.raises(ModelError, match="registered twice"):

        @register_model
        def mxr_unet18():  # noqa: F811 - deliberately clashes with the built-in
            raise AssertionError("never built")


def test_errors_share_one_base():
    assert issubclass(ModelError, GeoHSRError)

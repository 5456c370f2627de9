from decimal import Decimal

from policies.catalog import HOURS_PER_MONTH, load_lambda_catalog


def test_catalog_is_dated_and_sourced() -> None:
    catalog = load_lambda_catalog()
    assert catalog.as_of.year >= 2025
    assert "instance-types" in catalog.source


def test_prices_match_the_recorded_snapshot() -> None:
    catalog = load_lambda_catalog()
    snapshot = {
        "gpu_1x_a10": ("0.75", 30, 200),
        "gpu_1x_a6000": ("0.80", 14, 100),
        "gpu_1x_a100": ("1.29", 30, 200),
        "gpu_1x_gh200": ("1.49", 64, 432),
        "gpu_8x_a100": ("10.32", None, None),
        "gpu_1x_h100_sxm5": ("3.29", None, None),
        "gpu_8x_h100_sxm5": ("23.92", None, None),
    }
    assert set(catalog.instance_types) == set(snapshot)
    for name, (price, vcpus, memory) in snapshot.items():
        spec = catalog.instance_type(name)
        assert spec.price_usd_per_hour == Decimal(price)
        assert spec.gpus == int(name.split("_")[1].rstrip("x"))
        if vcpus is not None:
            assert (spec.vcpus, spec.memory_gib) == (vcpus, memory)


def test_cents_are_the_api_unit() -> None:
    assert load_lambda_catalog().instance_type("gpu_8x_h100_sxm5").price_cents_per_hour == 2392


def test_unknown_type_is_named_in_the_error() -> None:
    try:
        load_lambda_catalog().instance_type("gpu_1x_nope")
    except KeyError as error:
        assert "gpu_1x_nope" in str(error)
    else:
        raise AssertionError("expected KeyError")


def test_month_is_730_hours() -> None:
    assert HOURS_PER_MONTH == 730

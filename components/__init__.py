"""The platform's ComponentResources by domain; `platform.py` is the one root that composes them."""

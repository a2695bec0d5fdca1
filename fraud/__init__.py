"""The fraud check: the step between an accepted order and its payment (rules in `rules.py`, the
decision and an operator's review in `services.py`). Sits beside payments, not inside it:
orders <- fraud <- payments."""

"""Forms of the dashboard pages: they only parse; the services validate and decide."""

from django import forms

TEST_CARDS = [
    ("4242424242424242", "4242 4242 4242 4242 — succeeds"),
    ("4000000000000002", "4000 0000 0000 0002 — declined (generic)"),
    ("4000000000009995", "4000 0000 0000 9995 — declined (insufficient funds)"),
    ("4000000000000119", "4000 0000 0000 0119 — processing error, retried"),
    ("4000000000000259", "4000 0000 0000 0259 — succeeds slowly"),
]


class TestOrderForm(forms.Form):
    sku = forms.ChoiceField(choices=())
    quantity = forms.IntegerField(min_value=1, max_value=1000, initial=1)
    card = forms.ChoiceField(choices=TEST_CARDS, initial=TEST_CARDS[0][0])
    email = forms.EmailField(required=False)

    def __init__(self, *args, products=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sku"].choices = [
            (p.sku, f"{p.sku} — {p.name} ({p.price} {p.currency}, {p.stock.available} left)")
            for p in products
        ]


class RestockForm(forms.Form):
    sku = forms.CharField(max_length=64)
    quantity = forms.IntegerField(min_value=1, max_value=1_000_000)
    note = forms.CharField(max_length=500, required=False)


class PackForm(forms.Form):
    packages = forms.IntegerField(min_value=1, max_value=1000, initial=1)
    weight_grams = forms.IntegerField(min_value=1, max_value=10**7, initial=500)


class StoreSwitchesForm(forms.Form):
    fraud_check_enabled = forms.BooleanField(required=False)
    fulfillment_autopilot = forms.BooleanField(required=False)
    fraud_review_threshold = forms.IntegerField(min_value=0, max_value=100)

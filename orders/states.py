"""The order's vocabulary for the other apps: its status enumerations (and `Order` for type
annotations only, under TYPE_CHECKING). Other apps read orders through `orders.selectors`, move
them through `orders.services` and lock them through `orders.locks`; they never import
`orders.models` (`make lint` holds them to it)."""

from .models import Order

OrderStatus = Order.Status
PaymentStatus = Order.PaymentStatus
FulfillmentStatus = Order.FulfillmentStatus

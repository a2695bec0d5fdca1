"""Payments API: the operator's fraud-review decisions, a read of an order's payment, and refunds.

`POST /api/v1/orders/<id>/approve` and `/reject` act only on an order held in `fraud_review`
(anything else: 409 `invalid_transition`) of the request's store (another store's id: 404), and
answer 200 with the order.

`POST /api/v1/orders/<id>/refunds` refunds an amount or order lines through the gateway (see
`refunds.py` for the rules); `GET` lists the order's refunds with what remains refundable.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from fraud import services as fraud_services
from orderflow.core.errors import NotFound
from orderflow.core.permissions import Perm
from orderflow.core.tenancy import actor_name
from orders import selectors as order_selectors
from orders.idempotency import parse_key
from orders.representation import OrderOut

from . import refunds, retry, selectors, services
from .models import Payment, PaymentAttempt, Refund


class RejectIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PaymentAttemptDetail(serializers.ModelSerializer):
    class Meta:
        model = PaymentAttempt
        fields = [
            "number", "started_at", "finished_at", "outcome", "http_status", "error_code",
            "decline_code", "latency_ms", "charge_id",
        ]  # fmt: skip
        read_only_fields = fields


class PaymentDetail(serializers.ModelSerializer):
    order_id = serializers.UUIDField(read_only=True)
    attempts_log = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = [
            "id", "order_id", "status", "amount", "currency", "gateway_charge_id", "attempts",
            "error_code", "decline_code", "last_error", "next_retry_at", "refunded_amount",
            "created_at", "updated_at", "succeeded_at", "failed_at", "refunded_at", "attempts_log",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema(responses=PaymentAttemptDetail(many=True))
    def get_attempts_log(self, payment: Payment) -> list[dict]:
        return PaymentAttemptDetail(selectors.attempts(payment.store, payment), many=True).data


class OrderApproveView(GenericAPIView):
    """`POST /api/v1/orders/<id>/approve` — release an order held for fraud review to payment."""

    serializer_class = OrderOut
    write_perm = Perm.MANAGE_ORDERS

    @extend_schema(request=None, responses=OrderOut)
    def post(self, request, order_id):
        order_selectors.get_order(request.store, order_id)  # 404 outside the store
        services.approve_order(store=request.store, order_id=order_id, actor=actor_name(request))
        return Response(OrderOut(order_selectors.get_order(request.store, order_id)).data)


class OrderRejectView(GenericAPIView):
    """`POST /api/v1/orders/<id>/reject` `{"reason"?}` — close an order held for fraud review;
    its reserved stock is released."""

    serializer_class = RejectIn
    write_perm = Perm.MANAGE_ORDERS

    @extend_schema(request=RejectIn, responses=OrderOut)
    def post(self, request, order_id):
        body = RejectIn(data=request.data)
        body.is_valid(raise_exception=True)
        order_selectors.get_order(request.store, order_id)
        fraud_services.reject(
            store=request.store,
            order_id=order_id,
            actor=actor_name(request),
            reason=body.validated_data["reason"],
        )
        return Response(OrderOut(order_selectors.get_order(request.store, order_id)).data)


class OrderRetryPaymentView(GenericAPIView):
    """`POST /api/v1/orders/<id>/retry-payment` — pay a payment_failed order again with the card
    the vault still holds: stock reserved again, fraud check and payment as for a new order.
    202 with the order (now pending); 409 `invalid_transition` unless payment_failed (a second
    POST finds it pending: nothing is reserved or charged twice), 409 `card_token_expired` when the
    vault no longer holds the card (the shopper can pay again with a new card from the tracking
    page), 409 `insufficient_stock` when the stock is gone."""

    serializer_class = OrderOut
    write_perm = Perm.MANAGE_ORDERS

    @extend_schema(request=None, responses={202: OrderOut})
    def post(self, request, order_id):
        order_selectors.get_order(request.store, order_id)  # 404 outside the store
        actor = actor_name(request)
        retry.retry_payment(store=request.store, order_id=order_id, actor=actor, requested_by=actor)
        return Response(OrderOut(order_selectors.get_order(request.store, order_id)).data, status=202)


class OrderPaymentView(GenericAPIView):
    """`GET /api/v1/orders/<id>/payment` — the order's payment and every attempt at the gateway."""

    serializer_class = PaymentDetail

    def get(self, request, order_id):
        order = order_selectors.get_order(request.store, order_id)
        payment = selectors.payment_for_order(request.store, order.pk)
        if payment is None:
            raise NotFound("This order has no payment yet.")
        return Response(PaymentDetail(payment).data)


# ----------------------------------------------------------------------------- refunds


class RefundLineIn(serializers.Serializer):
    sku = serializers.CharField(max_length=64, required=False)
    line = serializers.IntegerField(required=False, help_text="The order line's id (instead of `sku`).")
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)

    def validate(self, attrs):
        if ("sku" in attrs) == ("line" in attrs):
            raise serializers.ValidationError("Name the line by exactly one of `sku` and `line`.")
        return attrs


class RefundIn(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, coerce_to_string=True)
    lines = RefundLineIn(many=True, required=False, allow_empty=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    restock = serializers.BooleanField(required=False, default=False)


class RefundLineOut(serializers.Serializer):
    line = serializers.IntegerField(source="item_id")
    sku = serializers.CharField(source="item.sku")
    quantity = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)


class RefundOut(serializers.ModelSerializer):
    order_id = serializers.UUIDField(read_only=True)
    lines = RefundLineOut(many=True, read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id", "order_id", "status", "amount", "currency", "reason", "restock", "lines",
            "gateway_refund_id", "error_code", "attempts", "actor", "created_at", "succeeded_at", "failed_at",
        ]  # fmt: skip
        read_only_fields = fields


class RefundsOut(serializers.Serializer):
    payment_status = serializers.CharField()
    captured_amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    refunded_amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    refundable_amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    refunds = RefundOut(many=True)


def _refunds_body(store, order) -> dict:
    payment = selectors.payment_for_order(store, order.pk)
    zero = "0.00"
    return RefundsOut(
        {
            "payment_status": order.payment_status,
            "captured_amount": payment.amount if payment and payment.gateway_charge_id else zero,
            "refunded_amount": payment.refunded_amount if payment else zero,
            "refundable_amount": refunds.refundable_amount(payment) if payment else zero,
            "refunds": refunds.refunds_for_order(store, order.pk),
        }
    ).data


class OrderRefundsView(GenericAPIView):
    """`POST /api/v1/orders/<id>/refunds` `{"amount": "12.50"}` or `{"lines": [{"sku", "quantity"}]}`,
    with `reason?` and `restock?` (lines only) — refund part or all of the captured payment through
    the gateway. An `Idempotency-Key` header makes a retry return the first refund (200) instead of
    refunding again. `GET` lists the order's refunds and what remains refundable."""

    serializer_class = RefundIn
    parser_classes = [JSONParser]
    write_perm = Perm.MANAGE_ORDERS

    @extend_schema(responses=RefundsOut)
    def get(self, request, order_id):
        order = order_selectors.get_order(request.store, order_id)
        return Response(_refunds_body(request.store, order))

    @extend_schema(request=RefundIn, responses={201: RefundOut, 200: RefundOut})
    def post(self, request, order_id):
        raw_key = request.headers.get("Idempotency-Key")
        client_key = parse_key(raw_key) if raw_key is not None else ""
        body = RefundIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        order_selectors.get_order(request.store, order_id)  # 404 outside the store
        lines = data.get("lines")
        refund, created = refunds.create_refund(
            store=request.store,
            order_id=order_id,
            actor=actor_name(request),
            amount=data.get("amount"),
            lines=[dict(line) for line in lines] if lines is not None else None,
            reason=data["reason"],
            restock=data["restock"],
            client_key=client_key,
        )
        refund = next(r for r in refunds.refunds_for_order(request.store, order_id) if r.pk == refund.pk)
        order = order_selectors.get_order(request.store, order_id)
        out = {**RefundOut(refund).data, "payment_status": order.payment_status}
        return Response(out, status=201 if created else 200)

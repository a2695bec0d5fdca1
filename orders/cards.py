"""Card numbers are checked here and then dropped: only the brand and the last four digits are kept,
so no code path can store or log the number or the CVC."""

from __future__ import annotations


def digits_only(number: str) -> str:
    """The number without the spaces and dashes people type."""
    return number.replace(" ", "").replace("-", "")


def luhn_valid(number: str) -> bool:
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str:
    """visa / mastercard / amex / discover / unknown, from the issuer prefix."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    two, four, six = int(number[:2] or 0), int(number[:4] or 0), int(number[:6] or 0)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if (
        number.startswith("6011")
        or number.startswith("65")
        or 644 <= int(number[:3] or 0) <= 649
        or 622126 <= six <= 622925
    ):
        return "discover"
    return "unknown"


def card_summary(number: str) -> tuple[str, str]:
    """(brand, last4): all that is ever kept of a card."""
    number = digits_only(number)
    return card_brand(number), number[-4:]

"""Order look-ups for the shop's order system.

Until a real order system is connected, `OrderBook` reads the sample orders in
`data/orders/orders.yml`; the actions only use this interface. An order carries the phone
number it was placed with: the actions show an order only to a customer who gives that number.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from kefu.config import PROJECT_ROOT
from kefu.errors import BadInput

ORDER_ID = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2}\d{10})(?!\d)")
DEFAULT_PATH = PROJECT_ROOT / "data" / "orders" / "orders.yml"
log = logging.getLogger(__name__)


def find_order_id(text: str) -> Optional[str]:
    """Pull an order number (2 letters + 10 digits) out of free text, upper-cased."""
    match = ORDER_ID.search(text or "")
    return match.group(1).upper() if match else None


def normalise_phone(value: Any) -> str:
    """Digits only, without a 00/+86 prefix before a mainland mobile: one number, one spelling."""
    digits = re.sub(r"\D", "", str(value or ""))
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    return digits


@dataclass(frozen=True)
class Order:
    id: str
    items: dict[str, str]
    status: str
    carrier: Optional[dict[str, str]]
    tracking: Optional[str]
    placed: dt.date
    delivered: Optional[dt.date]
    eta: Optional[dt.date]
    phone: Optional[str] = None

    def placed_by(self, phone: Any) -> bool:
        """Whether `phone` is the order's full number (not just its last digits); no phone on file: no."""
        given = normalise_phone(phone)
        return bool(self.phone) and len(given) >= 8 and secrets.compare_digest(given, normalise_phone(self.phone))

    def describe(self, language: str) -> str:
        """One sentence about where the order is, in `language` (zh or en)."""
        zh = language == "zh"
        carrier = (self.carrier or {}).get("zh" if zh else "en", "")
        if self.status == "processing":
            return f"商家正在备货，预计{self.eta}前发货。" if zh else f"being prepared; it should ship by {self.eta}."
        if self.status == "shipped":
            return (
                f"已由{carrier}发出，运单号{self.tracking}，预计{self.eta}送达。"
                if zh
                else f"shipped with {carrier}, tracking number {self.tracking}, expected on {self.eta}."
            )
        if self.status == "delivered":
            return f"已于{self.delivered}签收。" if zh else f"delivered on {self.delivered}."
        if self.status == "cancelled":
            return "订单已取消，款项已原路退回。" if zh else "cancelled; the payment was refunded."
        return self.status


_RELATIVE = re.compile(r"^today([+-]\d{1,4})?$")


def _date(value: Any, field: str, order_id: str, today: Optional[dt.date] = None) -> Optional[dt.date]:
    """ISO dates, or `today`, `today-3`, `today+2` (sample data that stays current)."""
    if value is None or isinstance(value, dt.date):
        return value
    relative = _RELATIVE.match(str(value).strip())
    if relative:
        return (today or dt.date.today()) + dt.timedelta(days=int(relative.group(1) or 0))
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise BadInput(f"order {order_id}: {field} must be an ISO date, got {value!r}") from exc


class OrderBook:
    """Read-only order look-up over a YAML file of orders (loaded once, lazily)."""

    def __init__(self, path: Path = DEFAULT_PATH) -> None:
        self.path = path
        self._orders: Optional[dict[str, Order]] = None

    def _load(self) -> dict[str, Order]:
        try:
            raw = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BadInput(f"cannot read orders from {self.path}: {exc}") from exc
        orders: dict[str, Order] = {}
        for number, row in enumerate(raw.get("orders") or [], 1):
            if not isinstance(row, dict) or not ORDER_ID.fullmatch(str(row.get("id", ""))):
                raise BadInput(f"{self.path}: order #{number} has no valid id")
            oid = str(row["id"]).upper()
            orders[oid] = Order(
                id=oid,
                items=dict(row.get("items") or {}),
                status=str(row.get("status", "processing")),
                carrier=row.get("carrier"),
                tracking=row.get("tracking"),
                placed=_date(row.get("placed"), "placed", oid) or dt.date.min,
                delivered=_date(row.get("delivered"), "delivered", oid),
                eta=_date(row.get("eta"), "eta", oid),
                phone=str(row["phone"]) if row.get("phone") else None,
            )
        return orders

    def get(self, order_id: str) -> Optional[Order]:
        if self._orders is None:
            self._orders = self._load()
        return self._orders.get(order_id.upper())

    def for_customer(self, order_id: str, phone: Any, who: str = "") -> Optional[Order]:
        """The order only for the phone it was placed with: someone else's looks unknown (logged)."""
        order = self.get(order_id)
        if order is not None and not order.placed_by(phone):
            log.warning("order %s asked for by %s: phone does not match, answered as not found", order.id, who[:64])
            return None
        return order

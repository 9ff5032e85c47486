"""A service that describes itself: typed params, declared errors, examples, events.

Run it with ``python examples/self_description.py``, then open
http://127.0.0.1:8000/api/docs in a browser, fetch http://127.0.0.1:8000/api/openrpc.json
(the methods) or http://127.0.0.1:8000/api/asyncapi.json (the events), or call
``rpc.discover``::

    curl -X POST -H "Content-Type: application/json" \
        -d '{"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}' http://127.0.0.1:8000/api

Send ``X-Api-Token: let-me-in`` to see the private method too.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar

import pydantic
from aiohttp import web

import gemstone_aio as gemstone
from gemstone_aio.server import SELF_DESCRIPTION_KEY


class Size(enum.Enum):
    """How big a pizza is."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class Pizza(pydantic.BaseModel):
    """A pizza on the menu."""

    name: str
    size: Size = Size.MEDIUM
    toppings: list[str] = []
    price: Annotated[float, pydantic.Field(gt=0, description="Price in euros.")]


class Order(pydantic.BaseModel):
    """An order as the kitchen sees it."""

    id: int
    pizzas: list[Pizza]
    note: str | None = None


class OvenReady(pydantic.BaseModel):
    """An oven is free for the next pizza."""

    oven: int
    temperature: Annotated[int, pydantic.Field(ge=0, description="Degrees Celsius.")]


class OutOfStockData(pydantic.BaseModel):
    """What is missing."""

    topping: str
    back_in_days: int | None = None


class OutOfStock(gemstone.JsonRpcError):
    """A topping ran out (-32010); ``data`` says which."""

    code = -32010
    default_message = "Out of stock"
    data_model: ClassVar[type[OutOfStockData]] = OutOfStockData


class PizzaService(gemstone.MicroService):
    """Takes pizza orders."""

    name = "pizza"
    version = "2.1.0"
    host = "127.0.0.1"
    port = 8000

    def __init__(self) -> None:
        super().__init__()
        self.orders: list[Order] = []
        self.free_ovens: list[int] = []

    def authenticate_request(self, request: web.Request) -> bool:
        return request.headers.get("X-Api-Token") == "let-me-in"

    @gemstone.exposed_method(
        errors=[OutOfStock],
        examples=[
            {
                "name": "one margherita",
                "params": {"pizzas": [{"name": "margherita", "price": 7.5}]},
                "result": {
                    "id": 1,
                    "pizzas": [
                        {"name": "margherita", "size": "medium", "toppings": [], "price": 7.5}
                    ],
                    "note": None,
                },
            }
        ],
    )
    @gemstone.emits("order.placed", Order, broadcast=False)
    async def order(self, pizzas: list[Pizza], note: str | None = None) -> Order:
        """Place an order.

        Args:
            pizzas: What to bake, at least one.
            note: A word for the kitchen.

        Returns:
            The order, with its number.
        """
        for pizza in pizzas:
            if "anchovies" in pizza.toppings:
                raise OutOfStock(data=OutOfStockData(topping="anchovies").model_dump())
        order = Order(id=len(self.orders) + 1, pizzas=pizzas, note=note)
        self.orders.append(order)
        # One kitchen instance bakes it (one-of-N); declared above with its body type.
        await self.emit_event("order.placed", order.model_dump(mode="json"), broadcast=False)
        return order

    @gemstone.exposed_method()
    async def menu(self, size: Size | None = None, *, limit: int = 10) -> list[Pizza]:
        """List the pizzas on the menu.

        Args:
            size: Only this size (all sizes when left out).
            limit: At most this many.
        """
        pizzas = [Pizza(name="margherita", size=s, price=7.5) for s in Size if size in (None, s)]
        # Emitted the gemstone 0.10 way, undeclared: described, but untyped.
        self.emit_event("menu.viewed", {"size": size.value if size else None})
        return pizzas[:limit]

    @gemstone.exposed_method(deprecated=True)
    def price(self, name: str, size: Size = Size.MEDIUM) -> float:
        """Tell the price of one pizza (use ``menu`` instead)."""
        return 7.5

    @gemstone.event_handler("oven.ready")
    async def on_oven_ready(self, body: OvenReady) -> None:
        """Put the next order in the free oven."""
        self.free_ovens.append(body.oven)

    @gemstone.exposed_method(private=True)
    async def revenue(self) -> dict[str, float]:
        """Sum the takings per pizza name (staff only)."""
        totals: dict[str, float] = {}
        for order in self.orders:
            for pizza in order.pizzas:
                totals[pizza.name] = totals.get(pizza.name, 0.0) + pizza.price
        return totals


def openrpc_document() -> dict[str, Any]:
    """The service's OpenRPC document, private methods included, without serving it."""
    return PizzaService().make_app()[SELF_DESCRIPTION_KEY].document(include_private=True)


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI document of the service's events, without serving it."""
    return PizzaService().make_app()[SELF_DESCRIPTION_KEY].asyncapi_document()


if __name__ == "__main__":
    PizzaService().start()

"""A service that describes itself: typed params, declared errors, examples.

Run it with ``python examples/self_description.py``, then open
http://127.0.0.1:8000/api/docs in a browser, fetch http://127.0.0.1:8000/api/openrpc.json,
or call ``rpc.discover``::

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
        return order

    @gemstone.exposed_method()
    async def menu(self, size: Size | None = None, *, limit: int = 10) -> list[Pizza]:
        """List the pizzas on the menu.

        Args:
            size: Only this size (all sizes when left out).
            limit: At most this many.
        """
        pizzas = [Pizza(name="margherita", size=s, price=7.5) for s in Size if size in (None, s)]
        return pizzas[:limit]

    @gemstone.exposed_method(deprecated=True)
    def price(self, name: str, size: Size = Size.MEDIUM) -> float:
        """Tell the price of one pizza (use ``menu`` instead)."""
        return 7.5

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


if __name__ == "__main__":
    PizzaService().start()

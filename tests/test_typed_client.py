"""Typed clients written by ``gemstone client``: type-checked, linted, and called for real.

The generated modules are checked the way a user's project would check them: ``mypy
--strict`` and ruff in subprocesses, from a directory outside this repository (so none
of its settings apply). A small program that uses them must type-check, and the same
program with a wrong argument type must not.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import importlib.util
import inspect
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest
from examples.self_description import OutOfStock, Pizza, PizzaService

import gemstone_aio as gemstone
from gemstone_aio.client import OMITTED, RemoteService, generate_client
from gemstone_aio.server import SELF_DESCRIPTION_KEY
from gemstone_aio.testing import serving
from tests.fixtures.cli import RunCli

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.py") if p.name != "__init__.py")
RUFF_RULES = "E,F,W,I,B,UP,ASYNC,SIM,RUF,D,N"


class Node(pydantic.BaseModel):
    """A tree node."""

    name: str
    children: list[Node] = []


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Odd(pydantic.BaseModel):
    """Names that are not Python identifiers, or that BaseModel has."""

    model_config = pydantic.ConfigDict(populate_by_name=True)

    from_: str = pydantic.Field(alias="from")
    json_: int = pydantic.Field(0, alias="json")
    when: datetime.datetime | None = None


class Shapes(gemstone.MicroService):
    """Every shape of signature the generator handles."""

    name = "shapes.service"

    @gemstone.exposed_method(name="math.add")
    async def add(self, *numbers: int) -> int:
        """Add numbers."""
        return sum(numbers)

    @gemstone.exposed_method()
    async def tag(
        self, label: str, *, tags: Sequence[str] = ("a",), **extra: float
    ) -> dict[str, Any]:
        """Tag a label.

        Args:
            label: The label.
            tags: Its tags.
            extra: Weights.
        """
        return {"label": label, "tags": list(tags), "extra": extra}

    @gemstone.exposed_method()
    async def tree(self, node: Node) -> Node:
        """Echo a tree."""
        return node

    @gemstone.exposed_method()
    async def level(
        self, level: Level = Level.LOW, pair: tuple[int, str] = (1, "x")
    ) -> Literal["low", "high"]:
        """Name a level."""
        return "low" if level is Level.LOW and pair[0] == 1 else "high"

    @gemstone.exposed_method()
    async def odd(self, odd: Odd) -> Odd:
        """Echo an odd model."""
        return odd

    @gemstone.exposed_method()
    async def nothing(self) -> None:
        """Do nothing."""

    @gemstone.exposed_method()
    async def anything(self, value):  # no annotations: any params, any result
        """Echo anything."""
        return value


def services_in(path: Path) -> list[type[gemstone.MicroService]]:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    module = importlib.import_module(name)
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, gemstone.MicroService)
        and obj.__module__ == module.__name__
    ]


def document_of(service: gemstone.MicroService) -> dict[str, Any]:
    return service.make_app()[SELF_DESCRIPTION_KEY].document(include_private=True)


def write_clients(directory: Path) -> dict[str, Path]:
    """Generate a client for every example service and for Shapes; name -> file."""
    written: dict[str, Path] = {}
    found: list[tuple[str, type[gemstone.MicroService]]] = [
        (p.stem, k) for p in EXAMPLES for k in services_in(p)
    ]
    found.append(("shapes", Shapes))
    for stem, service_class in found:
        module = f"{stem}_{service_class.__name__.lower()}_client"
        assert module not in written
        path = directory / f"{module}.py"
        path.write_text(generate_client(document_of(service_class())))
        written[module] = path
    return written


def load(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[dict[str, Path]]:
    written = write_clients(tmp_path)
    yield written
    for name in written:
        sys.modules.pop(name, None)


PROGRAM = """
from __future__ import annotations

from self_description_pizzaservice_client import Pizza, PizzaBlockingClient, PizzaClient, Size
from shapes_shapes_client import Node, ShapesServiceClient


async def main() -> None:
    async with PizzaClient("http://127.0.0.1:1/api") as pizza:
        order = await pizza.order([Pizza(name="margherita", price=7.5)], note="hot")
        number: int = order.id
        menu: list[Pizza] = await pizza.menu(Size.SMALL, limit=2)
        takings: dict[str, float] = await pizza.revenue()
    async with ShapesServiceClient() as shapes:
        total: int = await shapes.math_add(1, 2, 3)
        tree: Node = await shapes.tree(Node(name="root"))
        await shapes.tag("x", tags=["b"], weight=1.5)
    print(number, menu, takings, total, tree)


def blocking() -> float:
    with PizzaBlockingClient() as pizza:
        return pizza.menu()[0].price
"""

WRONG = {
    "await pizza.menu(Size.SMALL, limit=2)": 'await pizza.menu("small", limit=2)',
    "await shapes.math_add(1, 2, 3)": 'await shapes.math_add(1, "2")',
    "return pizza.menu()[0].price": "return pizza.menu()[0].name",
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.timeout(600)
def test_generated_clients_pass_mypy_strict_and_ruff(
    tmp_path: Path, clients: dict[str, Path]
) -> None:
    """Every example's client (and one of every signature shape) passes mypy --strict,
    ruff check and ruff format --check; a program using them type-checks, and the same
    program with wrong argument or result types fails exactly where they are wrong."""
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    good = tmp_path / "program.py"
    good.write_text(PROGRAM.lstrip())
    bad = tmp_path / "wrong_program.py"
    wrong = PROGRAM.lstrip()
    for right, mistake in WRONG.items():
        assert right in wrong
        wrong = wrong.replace(right, mistake)
    bad.write_text(wrong)
    files = [str(p.name) for p in clients.values()]

    checked = run(sys.executable, "-m", "mypy", "--strict", *files, "program.py", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    failed = run(sys.executable, "-m", "mypy", "--strict", "wrong_program.py", cwd=tmp_path)
    assert failed.returncode == 1
    errors = [line for line in failed.stdout.splitlines() if ": error:" in line]
    lines = wrong.splitlines()
    assert sorted(int(e.split(":")[1]) for e in errors) == sorted(
        lines.index(next(line for line in lines if m in line)) + 1 for m in WRONG.values()
    ), failed.stdout
    assert all("[arg-type]" in e or "[return-value]" in e for e in errors), errors

    ruff = [sys.executable, "-m", "ruff"]
    lint = run(
        *ruff,
        "check",
        "--isolated",
        "--target-version",
        "py311",
        "--select",
        RUFF_RULES,
        "--ignore",
        "E501",
        "--config",
        'lint.pydocstyle.convention="google"',
        *files,
        cwd=tmp_path,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for length in ("88", "100"):
        formatted = run(
            *ruff, "format", "--isolated", "--line-length", length, "--check", *files, cwd=tmp_path
        )
        assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_the_generated_pizza_client_reads_like_the_docs(clients: dict[str, Path]) -> None:
    """docs/client.md shows part of the generated pizza client: it is what is generated."""
    docs = (ROOT / "docs" / "client.md").read_text()
    source = clients["self_description_pizzaservice_client"].read_text()
    blocks = docs.split("```py\n")
    shown = [b.split("```")[0] for b in blocks[1:] if "class PizzaClient(TypedClient)" in b]
    assert len(shown) == 1
    for part in shown[0].split("    ...\n"):
        assert textwrap.dedent(part).strip() in source or part.strip() in source, part


async def test_typed_clients_give_what_the_untyped_client_gives(
    clients: dict[str, Path],
) -> None:
    """Against the running service, the async and blocking typed clients return the same
    values as RemoteService (as models), and raise the same errors."""
    module = load(clients["self_description_pizzaservice_client"])
    async with serving(PizzaService()) as service:
        url = service.accessible_at
        assert url is not None
        remote = RemoteService(url, token="let-me-in")
        typed = module.PizzaClient(remote)
        try:
            pizzas = [{"name": "margherita", "price": 7.5, "toppings": ["basil"]}]
            plain = await remote.call("order", pizzas=pizzas, note="hot")
            order = await typed.order([module.Pizza(**pizzas[0])], note="hot")
            assert isinstance(order, module.Order)
            assert order.model_dump(mode="json") == {**plain, "id": plain["id"] + 1}
            assert [p.model_dump(mode="json") for p in await typed.menu(limit=2)] == (
                await remote.call("menu", limit=2)
            )
            assert await typed.menu(module.Size.SMALL) == [
                module.Pizza.model_validate(p) for p in await remote.call("menu", size="small")
            ]
            with pytest.warns(DeprecationWarning, match="price is deprecated"):
                assert await typed.price("margherita") == await remote.call("price", "margherita")
            assert await typed.revenue() == await remote.call("revenue")
            with pytest.raises(gemstone.CalledServiceError) as typed_error:
                await typed.order([module.Pizza(name="x", price=1, toppings=["anchovies"])])
            with pytest.raises(gemstone.CalledServiceError) as plain_error:
                await remote.call("order", [{"name": "x", "price": 1, "toppings": ["anchovies"]}])
            assert typed_error.value.code == plain_error.value.code == OutOfStock.code
            assert typed_error.value.data == plain_error.value.data

            def blocking() -> Any:
                with module.PizzaBlockingClient(url) as client:
                    return client.menu(module.Size.LARGE, limit=1)

            assert await asyncio.to_thread(blocking) == await typed.menu(module.Size.LARGE, limit=1)
            assert [o.id for o in service.orders] == [1, 2]
            assert Pizza.model_validate(plain["pizzas"][0]).toppings == ["basil"]
        finally:
            await typed.aclose()  # a RemoteService passed in stays open: the caller closes it
            assert await remote.call("menu", limit=1)
            await remote.close()


async def test_every_signature_shape_calls_through(clients: dict[str, Path]) -> None:
    """*args go by position, **kwargs and keyword-only params by name, OMITTED params are
    left out (the service's default applies), aliases, enums, tuples, recursive models,
    None and unannotated results round-trip."""
    module = load(clients["shapes_shapes_client"])
    assert "async def math_add(self, *numbers: int) -> int:" in inspect.getsource(module)
    async with (
        serving(Shapes()) as service,
        module.ShapesServiceClient(service.accessible_at) as shapes,
    ):
        assert await shapes.math_add(1, 2, 3) == 6
        assert await shapes.tag("x") == {"label": "x", "tags": ["a"], "extra": {}}
        assert await shapes.tag("x", tags=["b"], weight=2.5) == {
            "label": "x",
            "tags": ["b"],
            "extra": {"weight": 2.5},
        }
        tree = module.Node(name="root", children=[module.Node(name="leaf")])
        assert await shapes.tree(tree) == tree
        assert await shapes.level() == "low"
        assert await shapes.level(module.Level.VALUE_2, (1, "y")) == "high"
        odd = module.Odd.model_validate({"from": "here", "json": 3, "when": "2020-01-02T03:04:05Z"})
        echoed = await shapes.odd(odd)
        assert (echoed.from_, echoed.json_, echoed.when.year) == ("here", 3, 2020)
        assert await shapes.nothing() is None
        assert await shapes.anything({"a": [1]}) == {"a": [1]}
    assert repr(OMITTED) == "OMITTED"


async def test_the_client_command_writes_the_module(tmp_path: Path, gemstone_cli: RunCli) -> None:
    """``gemstone client URL --output FILE`` writes what generate_client gives for the
    service's rpc.discover (private methods with --token), with URL as the default."""
    async with serving(PizzaService()) as service:
        url = service.accessible_at
        assert url is not None
        target = tmp_path / "orders_client.py"
        written, staff, renamed, bad = await asyncio.gather(
            gemstone_cli("client", url, "--output", str(target)),
            gemstone_cli("client", url, "--token", "let-me-in"),
            gemstone_cli("client", url, "--class-name", "Orders"),
            gemstone_cli("client", url, "--class-name", "not a name"),
        )
        async with RemoteService(url) as remote:
            document = await remote.request("rpc.discover")
    assert written.code == 0, written.stderr
    assert written.stderr == f"wrote {target}\n"
    assert target.read_text() == generate_client(document, url=url)
    assert "async def revenue" not in target.read_text()
    assert staff.code == 0
    assert "async def revenue" in staff.stdout
    assert f'default_url = "{url}"' in staff.stdout
    assert "class Orders(TypedClient):" in renamed.stdout
    assert "class OrdersBlocking(BlockingTypedClient):" in renamed.stdout
    assert bad.code == 2
    assert bad.stderr == "error: --class-name 'not a name' is not a Python identifier\n"

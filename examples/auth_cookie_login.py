"""A method sets a cookie on the HTTP response; the cookie then admits the caller."""

from __future__ import annotations

from types import MappingProxyType

import gemstone_aio as gemstone


class LoginService(gemstone.MicroService):
    name = "login"
    validation_strategies = (gemstone.BasicCookieStrategy("AuthToken"),)
    api_tokens = MappingProxyType({"session-ada": "ada"})

    @gemstone.exposed_method(requires_handler_reference=True)
    async def login(self, handler: gemstone.RequestHandler, password: str) -> bool:
        if not gemstone.tokens_equal(password, "correct horse"):
            return False
        handler.set_cookie("AuthToken", "session-ada", httponly=True, samesite="Strict")
        return True

    @gemstone.exposed_method(private=True)
    async def whoami(self) -> str:
        return str(gemstone.current_handler().identity)


if __name__ == "__main__":
    LoginService().start()

"""The original gemstone (newest release on PyPI) on current Tornado."""

import logging
import sys

from gemstone.core import MicroService, exposed_method


class Hello(MicroService):
    name = "hello"
    host = "127.0.0.1"
    port = int(sys.argv[1])
    skip_configuration = True

    @exposed_method()
    def say_hello(self, name):
        return "hello " + name

    @exposed_method(is_coroutine=False)
    def say_hello_blocking(self, name):
        return "hello " + name

    @exposed_method()
    def create_user(self, user):
        return user["name"]


logging.getLogger("tornado.access").setLevel(logging.WARNING)
Hello().start()

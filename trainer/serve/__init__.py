"""A trained run for robots and simulators: `bdv2 serve` (openpi's WebSocket + msgpack protocol) and
`bdv2 policy check` (does it keep up with the control rate?).

    wire       msgpack with numpy arrays, in openpi-client's layout
    protocol   the request and reply maps, checked against the run's keys and shapes
    contract   the run's image size and the units of its actions
    server     the asyncio server: one compiled policy, one episode per connection, one forward pass at a time
    check      the measurements and the verdict of `bdv2 policy check`

Importing this package imports numpy and msgpack; jax, the policy and websockets only when used.
"""

from .check import CheckResult, check_policy
from .check import render_text as render_check
from .contract import ServeError, action_contract, image_size_of
from .protocol import Request, RequestError, RequestSpec, example_request, parse_request
from .server import PolicyServer, ServeOptions, build, percentiles, running
from .wire import WireError, packb, unpackb

__all__ = [
    "CheckResult", "PolicyServer", "Request", "RequestError", "RequestSpec", "ServeError", "ServeOptions",
    "WireError", "action_contract", "build", "check_policy", "example_request", "image_size_of", "packb",
    "parse_request", "percentiles", "render_check", "running", "unpackb",
]

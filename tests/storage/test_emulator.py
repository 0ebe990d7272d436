"""The helpers around the local GCS API server."""

from __future__ import annotations

import socket

from mlray.storage.emulator import free_port


def test_free_port_never_hands_out_a_port_twice_even_when_the_kernel_offers_it_again():
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # free: nothing bound it

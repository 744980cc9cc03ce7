"""The password login of a process server: a lindbg extension of RSP (no I/O).

gdb has no way to answer a challenge, so a ``lindbgsrv`` started with
``password=`` serves lindbg clients only. The exchange reuses the debugging
servers' proofs (``lindbg.protocols.session``: HMAC-SHA256 over both nonces, a
different label each way), so the password never crosses the wire and each side
shows the other that it knows it:

1. The client's ``qSupported`` is answered as always, plus
   ``lindbg-auth=SNONCE`` (hex): the hello. This is all an unauthenticated
   peer learns.
2. The client sends ``QLindbgAuth:CNONCE,PROOF`` (hex), PROOF being
   ``client_proof(password, snonce, cnonce)``.
3. A right proof is answered ``OK;PROOF`` with ``server_proof(password, cnonce,
   snonce)``; the client checks it before it sends anything else. A wrong one is
   answered ``E.wrong password`` after ``WRONG_PASSWORD_DELAY`` seconds, and the
   server ends the connection.

Before a login every packet but ``qSupported`` and ``QLindbgAuth`` (no-ack mode
included) is answered ``E.`` with the reason, and touches nothing.
"""

from __future__ import annotations

import hmac

from lindbg.protocols.rsp import PayloadError, hex_decode, hex_encode
from lindbg.protocols.session import client_proof, make_nonce, server_proof

#: The qSupported field that carries the server's nonce.
AUTH_FEATURE = "lindbg-auth"
#: The packet that carries the client's nonce and proof.
AUTH_PACKET = b"QLindbgAuth"
#: Seconds a wrong password waits for its answer (a guesser gets one try per delay).
WRONG_PASSWORD_DELAY = 1.0
#: The answer to anything sent before a login.
LOGIN_FIRST = b"E.this process server has a password: log in with lindbg (password=...)"
WRONG_PASSWORD = b"E.wrong password"
_WELCOME = b"OK;"


class ServerLogin:
    """One connection's login, on the server's side."""

    __slots__ = ("_password", "_snonce", "done", "refused")

    def __init__(self, password: str) -> None:
        self._password = password
        self._snonce = make_nonce()
        #: The client proved it knows the password.
        self.done = False
        #: The client gave a wrong proof: the connection is to end.
        self.refused = False

    def feature(self) -> bytes:
        """What ``qSupported``'s reply gains: ``;lindbg-auth=SNONCE``."""
        return b";%s=%s" % (AUTH_FEATURE.encode(), hex_encode(self._snonce))

    def answer(self, args: bytes) -> bytes:
        """The reply to ``QLindbgAuth:ARGS``."""
        cnonce_hex, _, proof_hex = args.partition(b",")
        try:
            cnonce, proof = hex_decode(cnonce_hex), hex_decode(proof_hex)
        except PayloadError:
            cnonce, proof = b"", b""
        expected = client_proof(self._password, self._snonce, cnonce)
        if not cnonce or not hmac.compare_digest(expected, proof):
            self.refused = True
            return WRONG_PASSWORD
        self.done = True
        return _WELCOME + hex_encode(server_proof(self._password, cnonce, self._snonce))


def login_request(password: str, snonce_hex: str) -> tuple[bytes, bytes]:
    """The client's ``QLindbgAuth`` packet for the server's nonce, and its own nonce.

    Raises:
        PayloadError: the server's nonce is not hex.
    """
    snonce = hex_decode(snonce_hex.encode("ascii", "replace"))
    cnonce = make_nonce()
    proof = client_proof(password, snonce, cnonce)
    return b"%s:%s,%s" % (AUTH_PACKET, hex_encode(cnonce), hex_encode(proof)), cnonce


def welcome_is_genuine(password: str, snonce_hex: str, cnonce: bytes, reply: bytes) -> bool:
    """Whether ``reply`` to the login shows that the server knows the password too."""
    if not reply.startswith(_WELCOME):
        return False
    try:
        snonce = hex_decode(snonce_hex.encode("ascii", "replace"))
        proof = hex_decode(reply[len(_WELCOME) :])
    except PayloadError:
        return False
    return hmac.compare_digest(server_proof(password, cnonce, snonce), proof)

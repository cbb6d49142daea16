"""HMAC JWT keys prepared once per key, not once per token.

PyJWT prepares the key on every decode; for HMAC that means checking that the secret is not an
asymmetric key in disguise (PEM, SSH, DER, a JSON JWK) -- a defence against algorithm
confusion that depends only on the key. Every WebSocket connect and every REST request decodes
an access token with the same SECRET_KEY, so the check ran thousands of times a second with one
answer (about a fifth of a decode here). `install()` registers, through PyJWT's own algorithm
registry, HMAC algorithms that remember the answer for the keys they have accepted: a key that
fails the check is refused each time, as before.
"""

from __future__ import annotations

from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

# A process signs with SECRET_KEY (and, while rotating, an old one or two): a few keys at most.
KEYS_REMEMBERED = 8


class PreparedKeyHMAC(HMACAlgorithm):
    def __init__(self, hash_alg: Any) -> None:
        super().__init__(hash_alg)
        self._prepared: dict[str | bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        prepared = self._prepared.get(key) if isinstance(key, str | bytes) else None
        if prepared is None:
            prepared = super().prepare_key(key)  # raises for an unfit key: nothing remembered
            if isinstance(key, str | bytes) and len(self._prepared) < KEYS_REMEMBERED:
                self._prepared[key] = prepared
        return prepared


HMAC_ALGORITHMS = {"HS256": HMACAlgorithm.SHA256, "HS384": HMACAlgorithm.SHA384, "HS512": HMACAlgorithm.SHA512}


def install() -> None:
    """Replace PyJWT's HMAC algorithms with PreparedKeyHMAC (idempotent)."""
    for name, hash_alg in HMAC_ALGORITHMS.items():
        if isinstance(jwt.get_algorithm_by_name(name), PreparedKeyHMAC):
            continue
        jwt.unregister_algorithm(name)
        jwt.register_algorithm(name, PreparedKeyHMAC(hash_alg))

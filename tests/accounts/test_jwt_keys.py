"""HMAC keys are prepared once per key (accounts.jwt_keys), with PyJWT's checks kept."""

from unittest import mock

import jwt
import pytest
from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidKeyError
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts.jwt_keys import PreparedKeyHMAC
from accounts.models import User

PEM_KEY = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def test_the_hmac_algorithms_pyjwt_uses_remember_prepared_keys():
    for name in ("HS256", "HS384", "HS512"):
        assert isinstance(jwt.get_algorithm_by_name(name), PreparedKeyHMAC)


def test_a_key_is_checked_once_however_many_tokens_it_verifies():
    # given
    algorithm = PreparedKeyHMAC(HMACAlgorithm.SHA256)
    checks = mock.Mock(wraps=HMACAlgorithm.prepare_key)
    # when
    with mock.patch.object(HMACAlgorithm, "prepare_key", lambda self, key: checks(self, key)):
        prepared = [algorithm.prepare_key("a-long-enough-secret-key-for-hs256") for _ in range(5)]
    # then
    assert prepared == [b"a-long-enough-secret-key-for-hs256"] * 5
    assert checks.call_count == 1


def test_an_asymmetric_key_is_refused_every_time():
    algorithm = PreparedKeyHMAC(HMACAlgorithm.SHA256)
    for _ in range(2):
        with pytest.raises(InvalidKeyError):
            algorithm.prepare_key(PEM_KEY)
    assert algorithm._prepared == {}


def test_tokens_still_verify_and_forged_ones_still_fail(user: User):
    # given
    token = str(AccessToken.for_user(user))
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-entirely-of-32-bytes-or-more", "HS256")
    # when / then
    assert AccessToken(token)["user_id"] == str(user.pk)  # type: ignore[arg-type]
    assert AccessToken(token)["user_id"] == str(user.pk)  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        AccessToken(forged)  # type: ignore[arg-type]

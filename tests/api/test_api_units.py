"""The API's pure parts, without servers: token checks (HS256, RS256, ES256, static), the
schedule in words, cursors, and adding statistics documents up."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any, get_type_hints

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from natscron_api.auth import Authenticator, Scope, Unauthorized
from natscron_api.cursor import decode_cursor, encode_cursor
from natscron_api.describe import describe, describe_cron
from natscron_api.errors import ApiError
from natscron_api.stats import merge_stats, windows
from natscron_api.views import ExecutionView, ScheduledJobView
from natscron_shared.contract.errors import BadRequestError
from natscron_shared.contract.job_stats import duration_bucket, hour_period, summary
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import JobDocument, JobStatsDocument, ScheduledJobDocument

SECRET = "0123456789abcdef0123456789abcdef"


def token(key: Any, algorithm: str, **claims: Any) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm=algorithm)


def public_pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_jwts_signed_with_a_private_key_are_checked_with_the_public_pem(kind: str) -> None:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "rsa":
        private, algorithm = rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
    else:
        private, algorithm = ec.generate_private_key(ec.SECP256R1()), "ES256"
    auth = Authenticator(public_pem(private), None, open_access=False)
    caller = auth.authenticate(token(private, algorithm, sub="svc", scope="write"))
    assert caller.name == "svc"
    assert caller.scopes == {Scope.READ, Scope.WRITE}
    with pytest.raises(Unauthorized, match="invalid token"):
        auth.authenticate(token(SECRET, "HS256", scope="write"))  # no algorithm confusion
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Unauthorized):
        auth.authenticate(token(other, "ES256", scope="read"))
    escaped = public_pem(private).replace("\n", "\\n")  # as one line in an env file
    assert Authenticator(escaped, None, open_access=False).authenticate(
        token(private, algorithm, scope="read")
    ).scopes == {Scope.READ}


def test_hs256_tokens_need_exp_and_a_known_scope() -> None:
    auth = Authenticator(SECRET, None, open_access=False)
    assert auth.authenticate(token(SECRET, "HS256", scope=["read"])).scopes == {Scope.READ}
    assert auth.authenticate(token(SECRET, "HS256", scope="admin")).scopes == frozenset()
    without_exp = jwt.encode({"scope": "read"}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match="exp"):
        auth.authenticate(without_exp)
    with pytest.raises(Unauthorized, match="needs a bearer token"):
        auth.authenticate(None)


def test_static_tokens_and_their_mistakes() -> None:
    auth = Authenticator(None, "reader-0123456789ab:read, writer-0123456789ab:write", False)
    assert auth.authenticate("reader-0123456789ab").scopes == {Scope.READ}
    assert auth.authenticate("writer-0123456789ab").name == "static token 2"
    with pytest.raises(Unauthorized, match="not one this API knows"):
        auth.authenticate("reader-0123456789ac")
    for tokens, message in [
        ("reader-0123456789ab", "TOKEN:read or TOKEN:write"),
        ("reader-0123456789ab:admin", "TOKEN:read or TOKEN:write"),
        ("short:read", "at least 16 characters"),
        (" , ", "holds no TOKEN:SCOPE pair"),
    ]:
        with pytest.raises(BadRequestError, match=message):
            Authenticator(None, tokens, open_access=False)
    with pytest.raises(BadRequestError, match="public key, not the private one"):
        Authenticator("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----", None, False)
    with pytest.raises(BadRequestError, match="not a PEM public key"):
        Authenticator("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----", None, False)
    assert Authenticator(None, None, open_access=True).authenticate(None).scopes == set(Scope)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 2 * * *", "at 02:00 every day"),
        ("30 13 * * 1-5", "at 13:30 on weekdays (Monday to Friday)"),
        ("0 9,17 * * 1,3", "at 09:00 and 17:00 on Monday and Wednesday"),
        ("0 8 * * sun", "at 08:00 on Sunday"),
        ("0 0 1 * *", "at 00:00 on day 1 of every month"),
        ("0 6 1,15 jan,jul *", "at 06:00 on days 1 and 15 in January and July"),
        ("*/15 * * * *", "every 15 minutes"),
        ("* * * * *", "every minute"),
        ("5 * * * *", "every hour at :05"),
        ("0 */3 * * *", "every 3 hours at :00"),
        ("*/10 * * * * *", "every 10 seconds"),
        ("30 0 2 * * *", "at 02:00:30 every day"),
        ("0 0 * 6 *", "at 00:00 every day in June"),
        ("*/5 * * 6 *", "every 5 minutes in June"),
        ("*/5 * * * 1", "every 5 minutes on Monday"),
        ("0 0 13 * 5", None),  # day of month OR Friday: not put into words
        ("0 1-5 * * *", None),
        ("0-10 2 * * *", None),
        ("0 0,1,2,3,4,5,6 * * *", None),
    ],
)
def test_cron_in_words(expression: str, words: str | None) -> None:
    assert describe_cron(expression) == words


def test_schedules_in_words_with_zone_and_active_hours() -> None:
    base: dict[str, Any] = {"scheduled_job_id": "x", "name": "x", "scraper": "noop"}
    cron = ScheduledJob(
        **base, cron_expression="0 2 * * *", timezone="America/Indiana/Indianapolis"
    )
    assert describe(cron) == "at 02:00 every day, America/Indiana/Indianapolis"
    windowed = ScheduledJob.model_validate(
        {
            **base,
            "interval": {"hours": 2, "minutes": 30},
            "active_hours": {"start": "08:00", "end": "20:00", "weekdays": [1, 2, 3, 4, 5]},
        }
    )
    assert (
        describe(windowed) == "every 2 hours 30 minutes; only 08:00-20:00 on Mon, Tue, Wed,"
        " Thu, Fri"
    )
    once = ScheduledJob(**base, run_at=datetime(2027, 1, 1, 9, tzinfo=UTC))
    assert describe(once) == "once, at 2027-01-01T09:00:00+00:00"
    odd = ScheduledJob(**base, cron_expression="0 1-5 * * *")
    assert describe(odd) is None


def test_cursors_round_trip_and_refuse_strangers() -> None:
    cursor = encode_cursor("jobs", ["2026-01-01T00:00:00+00:00", "job-1"])
    assert decode_cursor("jobs", cursor, 2) == ["2026-01-01T00:00:00+00:00", "job-1"]
    for stranger in ("", "!!", cursor + "x", encode_cursor("scheduled_jobs", ["a", "b"])):
        with pytest.raises(ApiError, match="cursor"):
            decode_cursor("jobs", stranger, 2)


def test_statistics_documents_add_up() -> None:
    """An hour recorded with the sketch and one from before it (fixed buckets, the old
    `(100, 250]` and `(25, 50]`): the p95, 250 before, is now never above the maximum."""
    sketch = {str(duration_bucket(100)): 1, str(duration_bucket(180)): 1}
    hour_one: JobStatsDocument = {
        "_id": "s|2026-11-25T17", "scope": "s", "period": "2026-11-25T17",
        "runs": 2, "completed": 1, "failed": 1, "duration_ms_sum": 280, "duration_count": 2,
        "duration_ms_min": 100, "duration_ms_max": 180, "duration_sketch": sketch,
        "items_scraped": 5,
    }  # fmt: skip
    hour_two: JobStatsDocument = {
        "_id": "s|2026-11-25T18", "scope": "s", "period": "2026-11-25T18",
        "runs": 2, "completed": 2, "duration_ms_sum": 250, "duration_count": 2,
        "duration_ms_min": 50, "duration_ms_max": 200, "duration_buckets": {"2": 1, "4": 1},
        "items_saved": 4,
    }  # fmt: skip
    merged = summary(merge_stats([hour_one, hour_two]))
    assert merged["runs"] == 4 and merged["completed"] == 3 and merged["failed"] == 1
    assert merged["success_rate"] == pytest.approx(3 / 4)
    assert merged["duration_ms_mean"] == pytest.approx(530 / 4)
    assert (merged["duration_ms_min"], merged["duration_ms_max"]) == (50, 200)
    assert merged["duration_ms_p95"] == 200
    assert summary(merge_stats([hour_one]))["duration_ms_p95"] == pytest.approx(180, rel=0.01)
    assert (merged["items_scraped"], merged["items_saved"]) == (5, 4)
    assert summary(merge_stats([]))["success_rate"] is None


def test_windows_add_up_the_whole_utc_hours_they_span() -> None:
    now = datetime(2026, 11, 25, 17, 40, tzinfo=UTC)
    ages = {0: 1, 1: 2, 23: 4, 24: 8, 167: 16, 168: 32, 719: 64, 720: 128}  # hours back: runs
    hourly: dict[str, JobStatsDocument] = {}
    for back, runs in ages.items():
        period = hour_period(now - timedelta(hours=back))
        hourly[period] = {"_id": f"*|{period}", "scope": "*", "period": period, "runs": runs}
    shown = {name: summary.runs for name, summary in windows(hourly, now).items()}
    assert shown == {
        "last_1h": 1,
        "last_24h": 1 + 2 + 4,
        "last_7d": 1 + 2 + 4 + 8 + 16,
        "last_30d": 1 + 2 + 4 + 8 + 16 + 32 + 64,
    }


def test_document_views_name_fields_of_the_stored_documents() -> None:
    """A field the recorder renames in the storage schema must be renamed in the views."""
    assert set(ScheduledJobView.model_fields) <= set(get_type_hints(ScheduledJobDocument))
    assert set(ExecutionView.model_fields) <= set(get_type_hints(JobDocument))

"""Body size limit (declared and streamed) and per-principal rate limits, on a small ASGI app."""

import asyncio

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from app.api.limits import BodySizeLimit
from app.api.rate_limit import RateLimiter

LIMIT = 1024


class Body(BaseModel):
    text: str


def _app():
    app = FastAPI()
    seen = []

    @app.post("/echo")
    def echo(body: Body) -> dict:
        seen.append(len(body.text))
        return {"length": len(body.text)}

    app.add_middleware(BodySizeLimit, max_bytes=LIMIT)
    return app, seen


def _post(app, **kwargs) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.post("/echo", **kwargs)

    return asyncio.run(go())


def test_a_body_within_the_limit_is_parsed():
    app, seen = _app()
    response = _post(app, json={"text": "x" * 500})
    assert response.status_code == 200 and response.json() == {"length": 500} and seen == [500]


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    app, seen = _app()
    reads = []

    async def body():
        reads.append(1)
        yield b'{"text": "' + b"x" * 4000 + b'"}'

    response = _post(app, content=body(), headers={"Content-Length": "4012"})
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body over {LIMIT} bytes"}
    assert seen == []


def test_a_chunked_body_is_counted_and_refused_once_over_the_limit():
    app, seen = _app()

    async def chunks():
        yield b'{"text": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    response = _post(app, content=chunks())  # no Content-Length: streamed
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == f"request body over {LIMIT} bytes"
    assert seen == []


def test_rate_limiter_answers_with_the_seconds_to_wait():
    limiter = RateLimiter("3/minute")
    assert [limiter.hit("principal:a") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("principal:a")
    assert wait is not None and 1 <= wait <= 60
    assert limiter.hit("principal:b") is None  # each principal has its own budget


def test_rate_limiter_honours_every_budget():
    limiter = RateLimiter("2/second;100/minute")
    assert limiter.hit("k") is None and limiter.hit("k") is None
    assert limiter.hit("k") == 1

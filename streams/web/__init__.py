"""Staff web layer on the worker's Faust web server: review queue, account view, review page.

`install_web` is called once from ``Engine.__init__``. It mounts the handlers of `streams.web.views`
as Faust pages, starts the review index feed (`streams.web.review_index.ReviewFeed`) as an app task,
and wires the handlers to the worker: the account table for reads, the app's producer for review
decisions (``{prefix}.review.decisions``) and access records (``{prefix}.access``), and Faust's table
router so ``GET /accounts/{id}`` is answered by the worker that owns the account's partition.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import faust
from aiohttp import web as aiohttp_web
from faust.exceptions import SameNode
from faust.web import View

from streams.commands import ACCESS_TOPIC
from streams.web.auth import ReviewRules, UserDirectory
from streams.web.review_index import ReviewFeed, ReviewIndex
from streams.web.views import Handler, Route, StaffAPI, WebContext

if TYPE_CHECKING:
    from streams.app import Engine

__all__ = ["install_web"]

log = logging.getLogger(__name__)

DECISIONS_TOPIC = "review.decisions"


def _raw_topic(engine: Engine, name: str) -> faust.TopicT:
    """A bytes topic with the app's partition count (the ingest agent co-partitions on it)."""
    schema: faust.Schema = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    return engine.app.topic(engine.settings.topic(name), schema=schema, partitions=engine.settings.partitions)


def install_web(engine: Engine) -> WebContext:
    """Mount the staff API and review page on ``engine``'s web server; returns their context.

    Raises `streams.web.auth.UsersFileError` when ``BILLWISE_USERS_FILE`` is set but unusable, so a
    worker does not start with an API that silently refuses everyone. Without the setting the API
    answers 401 to every request (and says so in the log once).
    """
    settings = engine.settings
    app = engine.app
    users = UserDirectory.from_file(settings.users_file)
    if settings.users_file is None:
        log.warning("BILLWISE_USERS_FILE is not set: the staff API refuses every request (401)")

    topics = {name: _raw_topic(engine, name) for name in (DECISIONS_TOPIC, ACCESS_TOPIC)}
    by_full_name = {topic.get_topic_name(): topic for topic in topics.values()}

    async def publish(topic_name: str, key: str, value: bytes) -> None:
        # ``send`` queues the record; the future it returns resolves on the broker's acknowledgement.
        pending = await by_full_name[topic_name].send(key=key.encode(), value=value)
        await pending

    def load_account(account_id: str) -> bytes | None:
        blob = engine.accounts.get(account_id.encode())
        return blob if isinstance(blob, bytes) else None

    async def route_account(
        request: aiohttp_web.Request, account_id: str
    ) -> aiohttp_web.StreamResponse | None:
        """Forward to the worker owning the account's table partition; ``None`` when it is this one."""
        try:
            # Faust's router hands the aiohttp request to the aiohttp driver it came from.
            faust_request: Any = request
            response = await app.router.route_req(
                engine.accounts.name, account_id.encode(), app.web, faust_request
            )
        except SameNode:
            return None
        except Exception as exc:  # no assignment yet, or the owner is unreachable: try locally
            log.warning("could not route an account request: %s", type(exc).__name__)
            return None
        return response  # type: ignore[return-value]

    index = ReviewIndex()
    context = WebContext(
        users=users,
        index=index,
        publish=publish,
        load_account=load_account,
        decisions_topic=settings.topic(DECISIONS_TOPIC),
        access_topic=settings.topic(ACCESS_TOPIC),
        rules=ReviewRules.from_policy(engine.policy),
        route_account=route_account,
    )
    for route in StaffAPI(context).routes():
        app.page(route.path, name=route.name)(_faust_view(route))

    feed = ReviewFeed(
        index, settings.kafka_bootstrap_servers, settings.topic("review"), settings.topic("audit")
    )

    async def follow_review_queue() -> None:
        # The access topic must exist with the app's partition count before anything writes to it:
        # a broker that auto-creates it would use its default partition count.
        try:
            await topics[ACCESS_TOPIC].maybe_declare()
        except Exception as exc:
            log.warning("could not declare the access topic: %s", type(exc).__name__)
        await feed.run()

    app.task(follow_review_queue)
    return context


def _faust_view(route: Route) -> type[View]:
    """A Faust view class whose one method calls ``route.handler`` (an aiohttp handler)."""
    handler: Handler = route.handler

    async def call(self: View, request: Any, **match_info: Any) -> Any:
        return await handler(request)

    method = route.method.lower()
    return type(f"{route.name}_view", (View,), {method: call, "__doc__": route.handler.__doc__})

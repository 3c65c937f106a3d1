"""Drive Curtain through a client generated from openapi.json (openapi-python-client).

Creates a user and a link owned by it, follows the redirect, reads the link, its analytics,
real-time analytics and hourly time series, and lists users and events. Every answer goes
through the generated models (`raise_on_unexpected_status=True`, typed parsing), so a field the
spec declares wrongly (a null where it promises an integer, a missing key, an undocumented
status) fails the script.

Usage: python client_check.py BASE_URL  (the generated package `curtain_client` importable).
"""

import sys
import time
import uuid

from curtain_client import Client
from curtain_client.api.events import (
    get_events,
    get_urls_id_analytics,
    get_urls_id_analytics_realtime,
    get_urls_id_analytics_timeseries,
)
from curtain_client.api.redirects import get_r_short_code
from curtain_client.api.system import get_health
from curtain_client.api.urls import get_urls_id, post_urls
from curtain_client.api.users import get_users, post_users
from curtain_client.models import Analytics, RealtimeAnalytics, TimeSeries, Url, User, UrlInput, UserInput
from curtain_client.models.get_urls_id_analytics_timeseries_granularity import (
    GetUrlsIdAnalyticsTimeseriesGranularity as Granularity,
)


def check(cond, what):
    if not cond:
        sys.exit(f"client check failed: {what}")


def main(base):
    client = Client(base_url=base, raise_on_unexpected_status=True, follow_redirects=False)
    health = get_health.sync(client=client)
    check(health.status == "ok", f"health {health}")

    tag = uuid.uuid4().hex[:8]
    user = post_users.sync(client=client, body=UserInput(username=f"client-{tag}", email=f"client-{tag}@example.com"))
    check(isinstance(user, User), f"created user {user}")

    link = post_urls.sync(client=client, body=UrlInput(original_url=f"https://example.com/client/{tag}", user_id=user.id))
    check(isinstance(link, Url) and link.user_id == user.id, f"created link {link}")
    bare = post_urls.sync(client=client, body=UrlInput(original_url=f"https://example.com/client/{tag}/bare"))
    check(isinstance(bare, Url) and bare.user_id is None and bare.title is None, f"ownerless link {bare}")

    redirect = get_r_short_code.sync_detailed(link.short_code, client=client)
    check(redirect.status_code == 302, f"redirect status {redirect.status_code}")
    check(redirect.headers["location"] == link.original_url, f"Location {redirect.headers.get('location')}")

    again = get_urls_id.sync(str(link.id), client=client)
    check(isinstance(again, Url) and again.short_code == link.short_code, f"read link {again}")

    # The redirect shows up within two seconds (contract).
    deadline = time.time() + 5
    while True:
        analytics = get_urls_id_analytics.sync(str(link.id), client=client)
        check(isinstance(analytics, Analytics), f"analytics {analytics}")
        if analytics.redirect_count == 1 or time.time() > deadline:
            break
        time.sleep(0.2)
    check(analytics.redirect_count == 1, f"redirect_count {analytics.redirect_count}")
    check(analytics.latest_event_at is not None, "latest_event_at")
    fresh = get_urls_id_analytics.sync(str(bare.id), client=client)
    check(isinstance(fresh, Analytics) and fresh.redirect_count == 0, f"analytics of a new link {fresh}")

    realtime = get_urls_id_analytics_realtime.sync(str(link.id), client=client)
    check(isinstance(realtime, RealtimeAnalytics) and realtime.total_clicks == 1, f"realtime {realtime}")
    check(len(realtime.hourly) == 72, f"{len(realtime.hourly)} hourly buckets")

    series = get_urls_id_analytics_timeseries.sync(str(link.id), client=client, granularity=Granularity.HOUR)
    check(isinstance(series, TimeSeries) and len(series.points) == 25, f"time series {series}")
    check(sum(p.clicks for p in series.points) == 1, "one click in the series")

    users = get_users.sync(client=client)
    check(any(u.id == user.id for u in users), "the user is listed")
    events = get_events.sync(client=client, url_id=link.id)
    check({e.event_type for e in events} == {"created", "redirect"}, f"events {[e.event_type for e in events]}")
    check(all(e.user_id in (None, user.id) for e in events), "event user ids")
    print(f"client check: OK (user {user.id}, link {link.short_code}, {len(events)} events)")


if __name__ == "__main__":
    main(sys.argv[1])

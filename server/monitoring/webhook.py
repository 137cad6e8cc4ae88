"""Deliver new alerts to a Slack-compatible incoming webhook.

The URL comes from the operator's environment (``TRACESIEVE_ALERT_WEBHOOK``), never from a tool
argument: an agent must not be able to make the server post store contents to a URL of its
choosing. The body is Slack's ``{"text": ..., "blocks": [...]}`` (Mattermost, Rocket.Chat, Teams
workflows and most chat tools take the same shape). An alert is marked notified only after a 2xx;
a failed delivery is retried by the next run, so no alert is lost to a network blip.
"""

from __future__ import annotations

import logging
import os

import httpx

from tools import clock
from tools.monitors.ports import AlertRecord, MonitorStore

ENV = "TRACESIEVE_ALERT_WEBHOOK"
log = logging.getLogger(__name__)
ICON = {"regression": ":rotating_light:", "signal": ":warning:", "error_rate": ":warning:",
        "latency_p95": ":hourglass:", "emerging_pattern": ":new:"}


def slack_body(alert: AlertRecord) -> dict:
    examples = alert.evidence.get("example_trace_ids") or []
    text = f"{ICON.get(alert.kind, '')} [{alert.monitor}] {alert.kind}: {alert.summary}"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
              {"type": "context", "elements": [{"type": "mrkdwn", "text":
                                                f"alert `{alert.alert_id}` · ack with `tracesieve monitor ack "
                                                f"{alert.alert_id}`" + (f" · examples: {', '.join(examples[:3])}"
                                                                          if examples else "")}]}]
    return {"text": text, "blocks": blocks}


def deliver_pending(store: MonitorStore, url: str | None = None, *, timeout_s: float = 10.0) -> tuple[int, int]:
    """POST every open, not yet delivered alert. Returns (delivered, failed)."""
    url = url if url is not None else os.environ.get(ENV, "").strip()
    if not url:
        return 0, 0
    delivered, failed = [], 0
    with httpx.Client(timeout=timeout_s) as client:
        for alert in reversed(store.unnotified_alerts()):   # oldest first
            try:
                response = client.post(url, json=slack_body(alert))
                ok = response.is_success
            except httpx.HTTPError as error:
                log.warning("alert webhook failed for %s: %s", alert.alert_id, error)
                ok = False
            if ok:
                delivered.append(alert.alert_id)
            else:
                failed += 1
    store.mark_notified(delivered, clock.now_ms())
    return len(delivered), failed

"""Names of the domain events the journeys app emits (recorded on timelines and audit)."""
from __future__ import annotations

EVENT_RECORDED = "journeys.event.recorded"
STAGE_CHANGED = "journeys.stage.changed"
CSAT_SENT = "journeys.csat.sent"
CSAT_ANSWERED = "journeys.csat.answered"

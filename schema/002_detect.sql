-- 002_detect.sql - detector inputs and alert repeat counting.
-- Per-socket and per-station charger limit (the overload warning's limit:
-- the socket's, else the station's, else [detectors] overload_tamper_w,
-- 700 W); alerts count how often their condition came back inside the
-- cool-down (event 'repeated', not announced as 'raised') and when it was
-- last seen. Idempotent, as every migration.

ALTER TABLE sockets ADD COLUMN IF NOT EXISTS charge_max_w real
  CHECK (charge_max_w IS NULL OR charge_max_w > 0);
ALTER TABLE stations ADD COLUMN IF NOT EXISTS charge_max_w real
  CHECK (charge_max_w IS NULL OR charge_max_w > 0);

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS count int NOT NULL DEFAULT 1 CHECK (count >= 1);
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS last_seen timestamptz;

ALTER TABLE alert_events DROP CONSTRAINT IF EXISTS alert_events_event_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_event_check
  CHECK (event IN ('raised', 'escalated', 'cleared', 'acknowledged', 'closed', 'repeated'));

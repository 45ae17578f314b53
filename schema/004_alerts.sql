-- 004_alerts: the daemon's own alert. kind 'ingest' (station '_daemon',
-- socket 0) is raised while the daemon cannot see its stations (ingest
-- disconnected from the broker, replaying a backlog, back-pressured), when
-- silence is no evidence of anything and offline detection is paused.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
  CHECK (kind IN ('thermal_runaway', 'overload', 'overnight_charging', 'offline', 'ingest'));

-- 001_init.sql - the chargewatch schema (docs/ARCHITECTURE.md section 7): stations and
-- sockets with their policies, day-partitioned readings, alerts with their
-- event history, operator views and the ack/close functions. chargewatchd
-- applies it at start inside one transaction under an advisory lock and
-- records it in schema_migrations; every statement is idempotent so it can
-- also be run by hand with psql.

CREATE TABLE IF NOT EXISTS schema_migrations (
  name text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- Per-station policy. utc_offset_min 480 and the 22:00-06:00 night window are
-- the defaults of docs/DETECTORS.md (a city on UTC+8); shard assigns the
-- station to one daemon when several share the load (docs/ARCHITECTURE.md section 9).
CREATE TABLE IF NOT EXISTS stations (
  code text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
  name text,
  district text,
  site_type text NOT NULL DEFAULT 'outdoor'
    CHECK (site_type IN ('outdoor', 'indoor', 'ground_floor', 'basement')),
  utc_offset_min int NOT NULL DEFAULT 480 CHECK (utc_offset_min BETWEEN -720 AND 840),
  night_start time NOT NULL DEFAULT '22:00',
  night_end time NOT NULL DEFAULT '06:00',
  overnight_allowed bool NOT NULL DEFAULT true,
  breaker_w real CHECK (breaker_w IS NULL OR breaker_w > 0),
  shard int,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- last_ts is kept by the writer (max committed reading ts) so that a restart
-- restores each socket's duplicate filter without scanning readings.
CREATE TABLE IF NOT EXISTS sockets (
  station text NOT NULL REFERENCES stations (code) ON UPDATE CASCADE ON DELETE CASCADE,
  socket smallint NOT NULL CHECK (socket BETWEEN 1 AND 255),
  rated_w real NOT NULL DEFAULT 1000 CHECK (rated_w > 0),
  forbidden bool NOT NULL DEFAULT false,
  last_ts timestamptz,
  PRIMARY KEY (station, socket)
);

-- No foreign key to stations: a per-row check would cost the COPY path a
-- trigger call per row; the writer registers stations itself (auto_register).
-- state: 0 idle, 1 charging, 2 full, 3 fault (cw_charge_state_t).
-- station compares bytewise (COLLATE "C"; codes are [A-Za-z0-9_-]): the
-- unique index then orders its keys by memcmp instead of the database's
-- locale (strcoll for C.UTF-8 or en_US.UTF-8), which made a binary COPY into
-- the indexed table 6 % slower (docs/SCALING.md). A table made before keeps
-- the database's collation; comparisons with the other tables' station
-- columns use "C" either way.
CREATE TABLE IF NOT EXISTS readings (
  ts timestamptz NOT NULL,
  station text COLLATE "C" NOT NULL,
  socket smallint NOT NULL CHECK (socket BETWEEN 1 AND 255),
  v real,
  a real,
  w real,
  wh double precision,
  t real,
  t_amb real,
  smoke bool,
  state smallint
) PARTITION BY RANGE (ts);

-- Rows outside the daily partitions (late replays, clock errors) land here;
-- cw_ensure_partition moves them out when their day's partition is created.
CREATE TABLE IF NOT EXISTS readings_default PARTITION OF readings DEFAULT;

-- One index serves the per-socket time queries and makes replay idempotent
-- (a spooled batch that was in fact committed conflicts row by row).
CREATE UNIQUE INDEX IF NOT EXISTS readings_station_socket_ts ON readings (station, socket, ts);

-- Daily partition readings_YYYYMMDD for one UTC day. Returns true when it
-- created the partition. Serialised by an advisory lock so two daemons do not
-- race; rows already in the default partition for that day are moved.
CREATE OR REPLACE FUNCTION cw_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  part text := 'readings_' || to_char(day, 'YYYYMMDD');
  lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
  hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('chargewatch.partitions'));
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  IF EXISTS (SELECT 1 FROM readings_default WHERE ts >= lo AND ts < hi) THEN
    EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM readings_default WHERE ts >= $1 AND ts < $2 RETURNING *)'
                   ' INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
    EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
  ELSE
    EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
  END IF;
  RETURN true;
END $$;

-- Partitions for every UTC day from first to last; returns how many it created.
CREATE OR REPLACE FUNCTION cw_ensure_partitions(first date, last date) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  d date := first;
  n int := 0;
BEGIN
  WHILE d <= last LOOP
    IF cw_ensure_partition(d) THEN
      n := n + 1;
    END IF;
    d := d + 1;
  END LOOP;
  RETURN n;
END $$;

-- The daemon assigns ids itself (seeded from max(id) and the clock) so it can
-- raise an alert without the database; the sequence is for manual inserts.
CREATE SEQUENCE IF NOT EXISTS alerts_id_seq;

-- No foreign key to stations either: an alert must be storable even for a
-- station that is not (yet) registered. socket 0 means the whole station.
CREATE TABLE IF NOT EXISTS alerts (
  id bigint PRIMARY KEY DEFAULT nextval('alerts_id_seq'),
  station text NOT NULL,
  socket smallint NOT NULL CHECK (socket BETWEEN 0 AND 255),
  kind text NOT NULL
    CHECK (kind IN ('thermal_runaway', 'overload', 'overnight_charging', 'offline')),
  severity text NOT NULL CHECK (severity IN ('warning', 'critical')),
  state text NOT NULL DEFAULT 'open'
    CHECK (state IN ('open', 'cleared', 'acknowledged', 'closed')),
  opened_at timestamptz NOT NULL DEFAULT now(),
  escalated_at timestamptz,
  cleared_at timestamptz,
  acked_at timestamptz,
  acked_by text,
  closed_at timestamptz,
  closed_by text,
  peak_value double precision,
  threshold double precision,
  message text,
  unit text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE alerts_id_seq OWNED BY alerts.id;

CREATE INDEX IF NOT EXISTS alerts_open ON alerts (station, socket, kind) WHERE state <> 'closed';

-- (alert_id, ts, event) is unique so that storing an event twice (replay after
-- a failed commit acknowledgement) is harmless.
CREATE TABLE IF NOT EXISTS alert_events (
  alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
  ts timestamptz NOT NULL,
  event text NOT NULL
    CHECK (event IN ('raised', 'escalated', 'cleared', 'acknowledged', 'closed')),
  severity text,
  value double precision,
  detail jsonb,
  PRIMARY KEY (alert_id, ts, event)
);

-- What an operator looks at first: everything not closed, worst first.
CREATE OR REPLACE VIEW active_alerts AS
SELECT id, station, socket, kind, severity, state, opened_at, escalated_at, cleared_at,
       acked_at, acked_by, peak_value, threshold, unit, message,
       now() - opened_at AS age
FROM alerts
WHERE state <> 'closed'
ORDER BY (severity = 'critical') DESC, opened_at;

-- Last stored reading per socket, found through sockets.last_ts and the
-- unique index (one index probe per socket instead of a scan of readings).
CREATE OR REPLACE VIEW last_reading AS
SELECT s.station, s.socket, r.ts, r.v, r.a, r.w, r.wh, r.t, r.t_amb, r.smoke,
       CASE r.state WHEN 0 THEN 'idle' WHEN 1 THEN 'charging' WHEN 2 THEN 'full'
                    WHEN 3 THEN 'fault' END AS state,
       now() - r.ts AS age
FROM sockets s
JOIN LATERAL (SELECT * FROM readings r
              WHERE r.station = s.station AND r.socket = s.socket AND r.ts = s.last_ts) r ON true;

-- Operator actions from psql: mark the row and tell the daemon (it LISTENs on
-- cw_alert_cmd), which emits the event to the log, MQTT and alert_events.
-- Return false when the alert does not exist or the transition is not allowed.
CREATE OR REPLACE FUNCTION cw_ack(alert_id bigint, "by" text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  st text;
BEGIN
  UPDATE alerts SET state = 'acknowledged', acked_at = now(), acked_by = $2, updated_at = now()
  WHERE id = $1 AND state IN ('open', 'cleared')
  RETURNING station INTO st;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM pg_notify('cw_alert_cmd',
    json_build_object('id', $1, 'action', 'ack', 'by', $2, 'station', st)::text);
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION cw_close(alert_id bigint, "by" text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  st text;
BEGIN
  UPDATE alerts SET state = 'closed', closed_at = now(), closed_by = $2, updated_at = now()
  WHERE id = $1 AND state <> 'closed'
  RETURNING station INTO st;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM pg_notify('cw_alert_cmd',
    json_build_object('id', $1, 'action', 'close', 'by', $2, 'station', st)::text);
  RETURN true;
END $$;

-- 003_ops.sql - what operators and the city's reports need: the rectified
-- step of the alert lifecycle, short typeable alert references, who did what
-- (the database role), a NOTIFY per stored alert event (for `chargewatch
-- tail`), an IANA time zone per station, charging sessions, hourly rollups of
-- readings and retention by dropping whole daily partitions. Idempotent like
-- 001: it can be run again by hand with psql.

-- ------------------------------------------------------------- lifecycle
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS rectified_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS rectified_by text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS rectify_note text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS ref text;

ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_state_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_state_check
  CHECK (state IN ('open', 'cleared', 'acknowledged', 'rectified', 'closed'));
ALTER TABLE alert_events DROP CONSTRAINT IF EXISTS alert_events_event_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_event_check
  CHECK (event IN ('raised', 'escalated', 'repeated', 'cleared', 'acknowledged', 'rectified',
                   'closed'));

-- ------------------------------------------------------------- short references
-- A reference is A-MMDD-NNNN: the UTC day the alert was raised and a
-- per-day sequence from 1 (four digits, more past 9999). The daemon computes
-- it itself (it raises alerts without waiting for the database) from a
-- per-day counter restored at start with cw_alert_ref_last(); rows inserted
-- without one get one here. A reference names one alert among those not
-- closed (unique index below); a closed alert is found by its reference as
-- the most recent one, so the same text a year later does not collide.
CREATE TABLE IF NOT EXISTS alert_ref_days (
  day date PRIMARY KEY,
  last int NOT NULL DEFAULT 0
);

CREATE OR REPLACE FUNCTION cw_alert_ref(day date, n int) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT 'A-' || to_char($1, 'MMDD') || '-' || CASE WHEN $2 < 10000 THEN lpad($2::text, 4, '0') ELSE $2::text END
$$;

-- Highest sequence number handed out (or stored) for a UTC day; 0 when none.
CREATE OR REPLACE FUNCTION cw_alert_ref_last(day date) RETURNS int
LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT last FROM alert_ref_days WHERE alert_ref_days.day = $1), 0)
$$;

-- Next free reference for the UTC day of t (skips any taken by an alert
-- that is not closed, e.g. one the daemon assigned and stored meanwhile).
CREATE OR REPLACE FUNCTION cw_alert_ref_next(t timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  d date := ($1 AT TIME ZONE 'UTC')::date;
  n int;
  r text;
BEGIN
  LOOP
    INSERT INTO alert_ref_days AS x (day, last) VALUES (d, 1)
    ON CONFLICT (day) DO UPDATE SET last = x.last + 1
    RETURNING last INTO n;
    r := cw_alert_ref(d, n);
    IF NOT EXISTS (SELECT 1 FROM alerts WHERE ref = r AND state <> 'closed') THEN
      RETURN r;
    END IF;
  END LOOP;
END $$;

-- Fills a missing reference; records a given one in the day's counter (today
-- or yesterday, UTC: an alert stored after midnight from the spool); gives a
-- new one when the given one is already held by another alert not closed.
CREATE OR REPLACE FUNCTION cw_alerts_ref_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  today date := (now() AT TIME ZONE 'UTC')::date;
  d date;
  n int;
BEGIN
  IF NEW.ref IS NULL THEN
    NEW.ref := cw_alert_ref_next(now());
    RETURN NEW;
  END IF;
  IF EXISTS (SELECT 1 FROM alerts WHERE ref = NEW.ref AND id <> NEW.id AND state <> 'closed') THEN
    RAISE NOTICE 'alert %: reference % is taken, assigning another', NEW.id, NEW.ref;
    NEW.ref := cw_alert_ref_next(now());
    RETURN NEW;
  END IF;
  IF NEW.ref ~ '^A-[0-9]{4}-[0-9]{1,9}$' THEN
    n := split_part(NEW.ref, '-', 3)::int;
    FOREACH d IN ARRAY ARRAY[today, today - 1] LOOP
      IF to_char(d, 'MMDD') = split_part(NEW.ref, '-', 2) THEN
        INSERT INTO alert_ref_days AS x (day, last) VALUES (d, n)
        ON CONFLICT (day) DO UPDATE SET last = greatest(x.last, excluded.last);
        EXIT;
      END IF;
    END LOOP;
  END IF;
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS alerts_ref ON alerts;
CREATE TRIGGER alerts_ref BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION cw_alerts_ref_trg();

-- Alerts stored before this migration: numbered per MMDD across years in
-- the order they were opened, so no two open ones share a reference.
UPDATE alerts a SET ref = cw_alert_ref((x.opened_at AT TIME ZONE 'UTC')::date, x.n::int)
FROM (SELECT id, opened_at,
             row_number() OVER (PARTITION BY to_char(opened_at AT TIME ZONE 'UTC', 'MMDD')
                                ORDER BY opened_at, id) AS n
      FROM alerts WHERE ref IS NULL) x
WHERE a.id = x.id;
INSERT INTO alert_ref_days AS x (day, last)
SELECT (now() AT TIME ZONE 'UTC')::date, coalesce(max(split_part(ref, '-', 3)::int), 0)
FROM alerts WHERE ref ~ '^A-[0-9]{4}-[0-9]{1,9}$'
  AND split_part(ref, '-', 2) = to_char(now() AT TIME ZONE 'UTC', 'MMDD')
ON CONFLICT (day) DO UPDATE SET last = greatest(x.last, excluded.last);

CREATE UNIQUE INDEX IF NOT EXISTS alerts_ref_open ON alerts (ref) WHERE state <> 'closed';
CREATE INDEX IF NOT EXISTS alerts_ref ON alerts (ref);

-- The alert an operator names: digits are an id, A-MMDD-N (any case, the
-- A- optional, leading zeros optional) a reference, preferring one not
-- closed, then the most recently opened. Raises P0002 when there is none.
CREATE OR REPLACE FUNCTION cw_alert_resolve(ref_or_id text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
  s text := upper(btrim($1));
  m text[];
  r text;
  found_id bigint;
BEGIN
  IF s ~ '^[0-9]{1,18}$' THEN
    SELECT id INTO found_id FROM alerts WHERE id = s::bigint;
  ELSE
    m := regexp_match(s, '^(?:A-?)?([0-9]{4})-0*([0-9]{1,9})$');
    IF m IS NOT NULL THEN
      r := 'A-' || m[1] || '-' || CASE WHEN m[2]::int < 10000 THEN lpad(m[2], 4, '0') ELSE m[2] END;
      SELECT id INTO found_id FROM alerts WHERE ref = r
      ORDER BY (state <> 'closed') DESC, opened_at DESC LIMIT 1;
    END IF;
  END IF;
  IF found_id IS NULL THEN
    RAISE EXCEPTION 'no alert with id or reference "%"', $1
      USING ERRCODE = 'no_data_found', HINT = 'see active_alerts or `chargewatch alerts --all`';
  END IF;
  RETURN found_id;
END $$;

-- One operator action (ack, rectify, close) on alert id: the row changes
-- state; who did it is the database role (session_user), the by argument
-- is kept beside it as claimed_by with the note; the event is stored in
-- alert_events with the same timestamp (ms) the daemon is told in the
-- NOTIFY on cw_alert_cmd, so its own copy of the event is absorbed by the
-- primary key. The payload is a superset of 001's {id, action, by, station}.
-- Returns false when the transition is not allowed (already done, or
-- closed); raises P0002 for an unknown id.
CREATE OR REPLACE FUNCTION cw_alert_action(alert_id bigint, action text, "by" text, note text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  who text := session_user;
  t_at timestamptz := date_trunc('milliseconds', now());
  a alerts%ROWTYPE;
  ev text;
BEGIN
  SELECT * INTO a FROM alerts WHERE id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no alert with id %', $1 USING ERRCODE = 'no_data_found';
  END IF;
  IF action = 'ack' AND a.state IN ('open', 'cleared') THEN
    ev := 'acknowledged';
    UPDATE alerts SET state = ev, acked_at = t_at, acked_by = who, updated_at = now() WHERE id = $1;
  ELSIF action = 'rectify' AND a.state IN ('open', 'cleared', 'acknowledged') THEN
    ev := 'rectified';
    UPDATE alerts SET state = ev, rectified_at = t_at, rectified_by = who, rectify_note = $4,
                      acked_at = coalesce(acked_at, t_at), acked_by = coalesce(acked_by, who),
                      updated_at = now()
    WHERE id = $1;
  ELSIF action = 'close' AND a.state <> 'closed' THEN
    ev := 'closed';
    UPDATE alerts SET state = ev, closed_at = t_at, closed_by = who, updated_at = now() WHERE id = $1;
  ELSIF action NOT IN ('ack', 'rectify', 'close') THEN
    RAISE EXCEPTION 'unknown alert action "%"', action USING ERRCODE = 'invalid_parameter_value';
  ELSE
    RETURN false;
  END IF;
  INSERT INTO alert_events (alert_id, ts, event, severity, value, detail)
  VALUES ($1, t_at, ev, a.severity, a.peak_value,
          jsonb_strip_nulls(jsonb_build_object('state', ev, 'by', who, 'claimed_by', $3, 'note', $4,
                                               'via', 'sql', 'unit', a.unit, 'message', a.message,
                                               'threshold', a.threshold)))
  ON CONFLICT DO NOTHING;
  PERFORM pg_notify('cw_alert_cmd',
    json_build_object('id', $1, 'action', action, 'by', who, 'station', a.station,
                      'ref', a.ref, 'socket', a.socket, 'kind', a.kind,
                      'ts', (extract(epoch FROM t_at) * 1000)::bigint,
                      'claimed_by', $3, 'note', $4)::text);
  RETURN true;
END $$;

-- 001's signatures keep working (numeric id, by); an unknown id now raises.
CREATE OR REPLACE FUNCTION cw_ack(alert_id bigint, "by" text) RETURNS boolean
LANGUAGE sql AS $$ SELECT cw_alert_action($1, 'ack', $2, NULL) $$;
CREATE OR REPLACE FUNCTION cw_close(alert_id bigint, "by" text) RETURNS boolean
LANGUAGE sql AS $$ SELECT cw_alert_action($1, 'close', $2, NULL) $$;
CREATE OR REPLACE FUNCTION cw_rectify(alert_id bigint, note text, "by" text DEFAULT NULL) RETURNS boolean
LANGUAGE sql AS $$ SELECT cw_alert_action($1, 'rectify', $3, $2) $$;
-- By reference or id as text: cw_ack('A-1129-0042'), cw_close('a-1129-42', 'night shift', 'replaced socket').
CREATE OR REPLACE FUNCTION cw_ack(ref text, "by" text DEFAULT NULL, note text DEFAULT NULL) RETURNS boolean
LANGUAGE sql AS $$ SELECT cw_alert_action(cw_alert_resolve($1), 'ack', $2, $3) $$;
CREATE OR REPLACE FUNCTION cw_rectify(ref text, note text, "by" text DEFAULT NULL) RETURNS boolean
LANGUAGE sql AS $$ SELECT cw_alert_action(cw_alert_resolve($1), 'rectify', $3, $2) $$;
CREATE OR REPLACE FUNCTION cw_close(ref text, "by" text DEFAULT NULL, note text DEFAULT NULL) RETURNS boolean
LANGUAGE sql AS $$ SELECT cw_alert_action(cw_alert_resolve($1), 'close', $2, $3) $$;

-- An operator's step is not undone by a late copy of an earlier one: the
-- daemon stores its own record of an acknowledgement (state acknowledged)
-- after it hears of it, possibly after the alert was rectified meanwhile.
CREATE OR REPLACE FUNCTION cw_alerts_state_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.state = 'rectified' AND NEW.state IN ('open', 'cleared', 'acknowledged') THEN
    NEW.state := 'rectified';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS alerts_state ON alerts;
CREATE TRIGGER alerts_state BEFORE UPDATE OF state ON alerts
  FOR EACH ROW EXECUTE FUNCTION cw_alerts_state_trg();

-- One record per operator action: the SQL functions store the event
-- themselves (so it is recorded even while the daemon is down) and tell the
-- daemon, which stores its own record of the same action. A daemon that
-- takes the event time from the NOTIFY ("ts") is absorbed by the primary
-- key; one that uses its own clock is absorbed here (same alert and event
-- within 5 minutes of the SQL record).
CREATE OR REPLACE FUNCTION cw_alert_events_dedup_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.event IN ('acknowledged', 'rectified', 'closed') AND NEW.detail->>'via' IS DISTINCT FROM 'sql'
     AND EXISTS (SELECT 1 FROM alert_events e
                 WHERE e.alert_id = NEW.alert_id AND e.event = NEW.event AND e.detail->>'via' = 'sql'
                   AND e.ts BETWEEN NEW.ts - interval '5 minutes' AND NEW.ts + interval '5 minutes') THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS alert_events_dedup ON alert_events;
CREATE TRIGGER alert_events_dedup BEFORE INSERT ON alert_events
  FOR EACH ROW EXECUTE FUNCTION cw_alert_events_dedup_trg();

-- Every stored event, for `chargewatch tail`: the payload is the event's
-- key (alert_id, ts in microseconds since the epoch, event); the listener
-- reads the row itself (a NOTIFY payload is limited to 8000 bytes).
CREATE OR REPLACE FUNCTION cw_alert_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('cw_alert_events',
    json_build_object('alert_id', NEW.alert_id,
                      'ts_us', (extract(epoch FROM NEW.ts) * 1000000)::bigint,
                      'event', NEW.event)::text);
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS alert_events_notify ON alert_events;
CREATE TRIGGER alert_events_notify AFTER INSERT ON alert_events
  FOR EACH ROW EXECUTE FUNCTION cw_alert_events_notify();

-- ------------------------------------------------------------- time zones
-- An IANA zone per station (daylight saving included), replacing the fixed
-- utc_offset_min, which stays for old tools. Existing stations get the zone
-- of their offset: 480 -> Asia/Shanghai, whole hours -> Etc/GMT-N (POSIX
-- sign: Etc/GMT-8 is UTC+8), the usual fractional offsets -> their city,
-- any other -> a fixed POSIX zone.
CREATE OR REPLACE FUNCTION cw_offset_zone(offset_min int) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN $1 = 480 THEN 'Asia/Shanghai'
    WHEN $1 = 0 THEN 'UTC'
    WHEN $1 % 60 = 0 AND $1 BETWEEN -720 AND 840
      THEN 'Etc/GMT' || CASE WHEN $1 > 0 THEN '-' ELSE '+' END || (abs($1) / 60)::text
    WHEN $1 = 330 THEN 'Asia/Kolkata'
    WHEN $1 = 345 THEN 'Asia/Kathmandu'
    WHEN $1 = 390 THEN 'Asia/Yangon'
    WHEN $1 = 270 THEN 'Asia/Kabul'
    WHEN $1 = 210 THEN 'Asia/Tehran'
    WHEN $1 = 570 THEN 'Australia/Darwin'
    WHEN $1 = -570 THEN 'Pacific/Marquesas'
    ELSE format('<%s%s>%s%s:%s', CASE WHEN $1 < 0 THEN '-' ELSE '+' END,
                to_char(abs($1) / 60, 'FM00') || to_char(abs($1) % 60, 'FM00'),
                CASE WHEN $1 < 0 THEN '+' ELSE '-' END,
                to_char(abs($1) / 60, 'FM00'), to_char(abs($1) % 60, 'FM00'))
  END
$$;

-- The zone of a station not registered (yet): the column's default.
CREATE OR REPLACE FUNCTION cw_default_timezone() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'Asia/Shanghai'::text $$;

ALTER TABLE stations ADD COLUMN IF NOT EXISTS timezone text;
UPDATE stations SET timezone = cw_offset_zone(utc_offset_min) WHERE timezone IS NULL;
ALTER TABLE stations ALTER COLUMN timezone SET DEFAULT cw_default_timezone();
ALTER TABLE stations ALTER COLUMN timezone SET NOT NULL;

-- A zone the server does not know would only fail later, in a report.
CREATE OR REPLACE FUNCTION cw_stations_tz_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM now() AT TIME ZONE NEW.timezone;
  RETURN NEW;
EXCEPTION WHEN invalid_parameter_value THEN
  RAISE EXCEPTION 'station %: unknown time zone "%"', NEW.code, NEW.timezone
    USING ERRCODE = 'invalid_parameter_value';
END $$;
DROP TRIGGER IF EXISTS stations_tz ON stations;
CREATE TRIGGER stations_tz BEFORE INSERT OR UPDATE OF timezone ON stations
  FOR EACH ROW EXECUTE FUNCTION cw_stations_tz_trg();

-- ------------------------------------------------------------- sessions
-- One charge on one socket, written by the daemon when it ends (stop field,
-- state leaving charging, timeout) and on restart for sessions it had open.
-- Rewriting a session (same station, socket, started_at) updates the row:
-- a replay or a restart never duplicates it. end_reason: the device's stop
-- value, or idle (power fell under 15 W), timeout (no reading), restart
-- (the daemon stopped meanwhile).
CREATE TABLE IF NOT EXISTS charging_sessions (
  station text NOT NULL,
  socket smallint NOT NULL CHECK (socket BETWEEN 1 AND 255),
  started_at timestamptz NOT NULL,
  ended_at timestamptz NOT NULL,
  energy_wh double precision NOT NULL DEFAULT 0 CHECK (energy_wh >= 0),
  peak_w real,
  peak_t real,
  end_reason text NOT NULL
    CHECK (end_reason IN ('full', 'time', 'manual', 'unplugged', 'over_power', 'over_temp', 'smoke',
                          'idle', 'timeout', 'restart')),
  readings int NOT NULL DEFAULT 0 CHECK (readings >= 0),
  CHECK (ended_at >= started_at),
  PRIMARY KEY (station, socket, started_at)
);
CREATE INDEX IF NOT EXISTS charging_sessions_ended ON charging_sessions (ended_at);

CREATE OR REPLACE FUNCTION cw_session_store(station text, socket int, started_at timestamptz,
                                            ended_at timestamptz, energy_wh double precision,
                                            peak_w real, peak_t real, end_reason text, readings int)
RETURNS void
LANGUAGE sql AS $$
  INSERT INTO charging_sessions AS s VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
  ON CONFLICT (station, socket, started_at) DO UPDATE SET
    ended_at = excluded.ended_at, energy_wh = excluded.energy_wh, peak_w = excluded.peak_w,
    peak_t = excluded.peak_t, end_reason = excluded.end_reason, readings = excluded.readings
$$;

-- ------------------------------------------------------------- hourly rollups
-- One row per socket and UTC hour that had readings:
--   readings          rows in the hour;
--   energy_wh         sum of the rises of the cumulative wh counter, each
--                     rise counted in the hour of the later reading; a fall
--                     (the counter restarted with a new session) counts the
--                     new value; the first reading of a socket counts 0;
--   t_max, t_min      of t; w_max of w;
--   minutes_charging  for each reading that shows charging (state charging,
--                     or w >= 15 W), the time to the socket's next reading,
--                     at most 10 minutes, counted in the hour of the reading.
CREATE TABLE IF NOT EXISTS readings_hourly (
  station text NOT NULL,
  socket smallint NOT NULL,
  hour timestamptz NOT NULL,
  energy_wh double precision NOT NULL,
  t_max real,
  t_min real,
  w_max real,
  minutes_charging double precision NOT NULL,
  readings int NOT NULL,
  PRIMARY KEY (station, socket, hour)
);
CREATE INDEX IF NOT EXISTS readings_hourly_hour ON readings_hourly (hour);

-- Recomputes every hour touched by [from, to) (widened to whole hours) from
-- readings and upserts it; returns the number of hourly rows written.
-- Idempotent: run it again over the same range and nothing changes.
CREATE OR REPLACE FUNCTION cw_rollup_readings("from" timestamptz, "to" timestamptz) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  lo timestamptz := date_trunc('hour', $1 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  hi timestamptz := date_trunc('hour', ($2 AT TIME ZONE 'UTC') - interval '1 microsecond')
                    AT TIME ZONE 'UTC' + interval '1 hour';
  n int;
BEGIN
  WITH r AS (
    SELECT station, socket, ts, wh, w, t, state FROM readings
    WHERE ts >= lo AND ts < hi + interval '10 minutes'
  ), keys AS (
    SELECT DISTINCT station, socket FROM r WHERE ts < hi
  ), energy_in AS (
    SELECT station, socket, ts, wh, false AS base FROM r WHERE wh IS NOT NULL AND ts < hi
    UNION ALL
    SELECT k.station, k.socket, p.ts, p.wh, true FROM keys k
    CROSS JOIN LATERAL (SELECT ts, wh FROM readings x
                        WHERE x.station = k.station AND x.socket = k.socket AND x.ts < lo
                          AND x.wh IS NOT NULL
                        ORDER BY ts DESC LIMIT 1) p
  ), energy AS (
    SELECT station, socket, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
           sum(CASE WHEN prev IS NULL THEN 0 WHEN wh >= prev THEN wh - prev ELSE wh END) AS wh
    FROM (SELECT *, lag(wh) OVER (PARTITION BY station, socket ORDER BY ts) AS prev FROM energy_in) e
    WHERE NOT base
    GROUP BY 1, 2, 3
  ), steps AS (
    SELECT station, socket, ts, w, t,
           (state = 1 OR w >= 15) AS charging,
           lead(ts) OVER (PARTITION BY station, socket ORDER BY ts) AS next_ts
    FROM r
  ), hours AS (
    SELECT station, socket, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
           max(t) AS t_max, min(t) AS t_min, max(w) AS w_max, count(*)::int AS readings,
           coalesce(sum(CASE WHEN charging AND next_ts IS NOT NULL
                             THEN extract(epoch FROM least(next_ts - ts, interval '10 minutes')) / 60
                        END), 0) AS minutes
    FROM steps WHERE ts < hi
    GROUP BY 1, 2, 3
  ), up AS (
    INSERT INTO readings_hourly AS h
      (station, socket, hour, energy_wh, t_max, t_min, w_max, minutes_charging, readings)
    SELECT h.station, h.socket, h.hour, coalesce(e.wh, 0), h.t_max, h.t_min, h.w_max, h.minutes, h.readings
    FROM hours h LEFT JOIN energy e USING (station, socket, hour)
    ON CONFLICT (station, socket, hour) DO UPDATE SET
      energy_wh = excluded.energy_wh, t_max = excluded.t_max, t_min = excluded.t_min,
      w_max = excluded.w_max, minutes_charging = excluded.minutes_charging, readings = excluded.readings
    RETURNING 1
  )
  SELECT count(*) INTO n FROM up;
  RETURN n;
END $$;

-- Per station and local day (the station's zone), from the rollups only:
-- what the city's monthly report reads.
CREATE OR REPLACE VIEW station_daily AS
SELECT h.station, (h.hour AT TIME ZONE s.timezone)::date AS day,
       sum(h.energy_wh) AS energy_wh, max(h.t_max) AS t_max, max(h.w_max) AS w_max,
       sum(h.minutes_charging) AS minutes_charging, sum(h.readings) AS readings
FROM readings_hourly h JOIN stations s ON s.code = h.station
GROUP BY 1, 2;

-- ------------------------------------------------------------- retention
CREATE TABLE IF NOT EXISTS retention_log (
  partition text NOT NULL,
  day date NOT NULL,
  rows bigint NOT NULL,
  hourly_rows int NOT NULL,
  dropped_at timestamptz NOT NULL DEFAULT now(),
  dropped_by text NOT NULL DEFAULT session_user
);

-- Drops the daily partitions readings_YYYYMMDD whose whole UTC day is more
-- than retain_days before today (UTC), after rolling the day up into
-- readings_hourly (the rollup reads the first 10 minutes of the next day,
-- still there, for the last charging interval). Each drop is logged in
-- retention_log and raised as a NOTICE; returns the partitions dropped.
CREATE OR REPLACE FUNCTION cw_drop_old_partitions(retain_days int)
RETURNS TABLE (partition text, day date, rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
  cutoff date := (now() AT TIME ZONE 'UTC')::date - $1;
  p record;
  d date;
  nrows bigint;
  nh int;
BEGIN
  IF $1 IS NULL OR $1 < 1 THEN
    RAISE EXCEPTION 'retain_days must be at least 1 (got %)', $1 USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('chargewatch.partitions'));
  FOR p IN SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'readings'::regclass AND c.relname ~ '^readings_[0-9]{8}$'
           ORDER BY c.relname LOOP
    d := to_date(substr(p.name, 10), 'YYYYMMDD');
    CONTINUE WHEN d >= cutoff;
    nh := cw_rollup_readings(d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
    EXECUTE format('SELECT count(*) FROM %I', p.name) INTO nrows;
    EXECUTE format('DROP TABLE %I', p.name);
    INSERT INTO retention_log (partition, day, rows, hourly_rows) VALUES (p.name, d, nrows, nh);
    RAISE NOTICE 'dropped partition % (% rows, % hourly rows kept)', p.name, nrows, nh;
    partition := p.name;
    day := d;
    rows := nrows;
    RETURN NEXT;
  END LOOP;
END $$;

-- ------------------------------------------------------------- log times
-- The alert log's times: UTC with milliseconds ("2026-11-29T08:00:00.123Z")
-- and the station's local time beside it with its offset
-- ("2026-11-29T16:00:00.123+08:00"), for `chargewatch tail` and reports.
CREATE OR REPLACE FUNCTION cw_utc_text(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
CREATE OR REPLACE FUNCTION cw_local_text(ts timestamptz, zone text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT to_char(l, 'YYYY-MM-DD"T"HH24:MI:SS.MS') || CASE WHEN o < 0 THEN '-' ELSE '+' END
         || to_char(abs(o) / 60, 'FM00') || ':' || to_char(abs(o) % 60, 'FM00')
  FROM (SELECT $1 AT TIME ZONE $2 AS l,
               (extract(epoch FROM ($1 AT TIME ZONE $2) - ($1 AT TIME ZONE 'UTC')) / 60)::int AS o) x
$$;

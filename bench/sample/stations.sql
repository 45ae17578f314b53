-- Station and socket policies for a capture written by bench/gen.
-- Apply with psql after the daemon has created the schema, then SIGHUP it.
BEGIN;
INSERT INTO stations (code, overnight_allowed) VALUES ('CX-0003', false)
  ON CONFLICT (code) DO UPDATE SET overnight_allowed = EXCLUDED.overnight_allowed;
INSERT INTO sockets (station, socket, forbidden) VALUES ('CX-0003', 5, true)
  ON CONFLICT (station, socket) DO UPDATE SET forbidden = EXCLUDED.forbidden;
COMMIT;

-- 006_alert_owner: which daemon raised an alert (its [mqtt] client_id). A
-- daemon outside cluster mode restores at start only the alerts it raised,
-- so two daemons on one database (disjoint stations) do not each take the
-- other's alerts back (and then each record an operator's action on them).
-- NULL: raised before this column existed; every daemon restores those, as
-- before, and the first daemon to store an event of one becomes its owner.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS raised_by text;

-- The service's own login (the migrations grant it what it may do; the history stays append-only
-- because it is not the owner). Change the password for anything but a trial.
CREATE ROLE gis_app LOGIN PASSWORD 'gis_app';

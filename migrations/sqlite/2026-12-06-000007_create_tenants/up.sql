-- Tenants as data: the directory the server caches, written by `xclade-auth tenant ...`.
-- Every write bumps the one revision row of tenant_directory in its own transaction and stamps
-- the tenant it changes with the new revision, so a reader that sees revision n sees every
-- change up to n (and asks for the tenants with a revision above the one it has).
CREATE TABLE tenant (
    id         TEXT PRIMARY KEY,
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    -- The tenant's own settings: a JSON object of string to string (secrets sealed).
    settings   TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- The directory's revision when this tenant last changed.
    revision   BIGINT NOT NULL
);
CREATE INDEX tenant_revision_idx ON tenant (revision);

-- One row: the directory's revision.
CREATE TABLE tenant_directory (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO tenant_directory (id, revision) VALUES (1, 1);

-- Every row written so far says tenant_id = 'default': that tenant exists from the start, as
-- the directory's first change.
-- Times are UTC text in the form diesel reads and writes (`YYYY-MM-DD HH:MM:SS.SSS`).
INSERT INTO tenant (id, status, settings, created_at, updated_at, revision)
VALUES ('default', 'active', '{}', strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now'), 1);

-- Change notifications for the instances' memory (docs/architecture.md, "The identity cache").
-- NOTIFY is transactional: a listener hears a change when, and only if, its transaction
-- commits. Every instance's listener (crates/auth-store-diesel/src/listen.rs) LISTENs to both
-- channels on a connection of its own.

-- `xclade_identity`, payload `tenant:identity`: an identity, or one of its provider identities,
-- was updated or deleted, by anyone (an instance, the CLI, SQL by hand). Inserts need no
-- notice: a missing identity is never cached.
CREATE FUNCTION xclade_notify_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'auth_identity' THEN
        PERFORM pg_notify('xclade_identity', OLD.tenant_id || ':' || OLD.id);
    ELSE
        PERFORM pg_notify('xclade_identity', OLD.tenant_id || ':' || OLD.auth_identity_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER auth_identity_notify AFTER UPDATE OR DELETE ON auth_identity
    FOR EACH ROW EXECUTE FUNCTION xclade_notify_identity();
CREATE TRIGGER provider_identity_notify AFTER UPDATE OR DELETE ON provider_identity
    FOR EACH ROW EXECUTE FUNCTION xclade_notify_identity();

-- `xclade_directory`, payload the new revision: a tenant, its settings or its keys changed (every
-- such write bumps the directory's revision first, in its transaction).
CREATE FUNCTION xclade_notify_directory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('xclade_directory', NEW.revision::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tenant_directory_notify AFTER UPDATE ON tenant_directory
    FOR EACH ROW EXECUTE FUNCTION xclade_notify_directory();

-- A number every change to configuration raises: organizations and what an execution's
-- organization context is made of (variables, integrations, mappings, directory, forms and
-- their links), trigger switches and webhook secrets. A process keeps what it derived from
-- them (an org's context) and reads them again only when the number has moved, so a change
-- made by any process (the CLI, another server) is seen by the next execution.
CREATE TABLE config_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO config_generation (id, n) VALUES (1, 0);

CREATE FUNCTION raise_config_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_generation SET n = n + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER orgs_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();
CREATE TRIGGER org_vars_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON org_vars
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();
CREATE TRIGGER integrations_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON integrations
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();
CREATE TRIGGER org_mappings_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON org_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();
CREATE TRIGGER directory_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON directory
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();
CREATE TRIGGER forms_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON forms
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();
CREATE TRIGGER form_links_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON form_links
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();
CREATE TRIGGER trigger_switches_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON trigger_switches
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();
CREATE TRIGGER webhook_secrets_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON webhook_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION raise_config_generation();

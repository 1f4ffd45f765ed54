-- A number every change to configuration raises: organizations and what an execution's
-- organization context is made of (variables, integrations, mappings, directory, forms and
-- their links), trigger switches and webhook secrets. A process keeps what it derived from
-- them (an org's context) and reads them again only when the number has moved, so a change
-- made by any process (the CLI, another server) is seen by the next execution.
CREATE TABLE config_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO config_generation (id, n) VALUES (1, 0);
CREATE TRIGGER orgs_insert_config AFTER INSERT ON orgs BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER orgs_update_config AFTER UPDATE ON orgs BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER orgs_delete_config AFTER DELETE ON orgs BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER org_vars_insert_config AFTER INSERT ON org_vars BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER org_vars_update_config AFTER UPDATE ON org_vars BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER org_vars_delete_config AFTER DELETE ON org_vars BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER integrations_insert_config AFTER INSERT ON integrations BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER integrations_update_config AFTER UPDATE ON integrations BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER integrations_delete_config AFTER DELETE ON integrations BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER org_mappings_insert_config AFTER INSERT ON org_mappings BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER org_mappings_update_config AFTER UPDATE ON org_mappings BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER org_mappings_delete_config AFTER DELETE ON org_mappings BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER directory_insert_config AFTER INSERT ON directory BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER directory_update_config AFTER UPDATE ON directory BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER directory_delete_config AFTER DELETE ON directory BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER forms_insert_config AFTER INSERT ON forms BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER forms_update_config AFTER UPDATE ON forms BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER forms_delete_config AFTER DELETE ON forms BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER form_links_insert_config AFTER INSERT ON form_links BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER form_links_update_config AFTER UPDATE ON form_links BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER form_links_delete_config AFTER DELETE ON form_links BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER trigger_switches_insert_config AFTER INSERT ON trigger_switches BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER trigger_switches_update_config AFTER UPDATE ON trigger_switches BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER trigger_switches_delete_config AFTER DELETE ON trigger_switches BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER webhook_secrets_insert_config AFTER INSERT ON webhook_secrets BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER webhook_secrets_update_config AFTER UPDATE ON webhook_secrets BEGIN UPDATE config_generation SET n = n + 1; END;
CREATE TRIGGER webhook_secrets_delete_config AFTER DELETE ON webhook_secrets BEGIN UPDATE config_generation SET n = n + 1; END;

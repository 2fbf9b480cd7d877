-- +goose Up
-- Project roles (issue #15): a principal (a user usr-… or an app app-…) holds
-- roles per project. Built-in roles (owner, admin, operator, viewer,
-- auditor) are defined in code; custom roles are rows here, one project's
-- each: action patterns and optional resource scopes, as JSON lists.
CREATE TABLE roles (
    id          VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id  VARCHAR(64)   NOT NULL,
    name        VARCHAR(64)   NOT NULL,
    description VARCHAR(1024) NOT NULL,
    actions     {{.LargeText}} NOT NULL,
    scopes      {{.LargeText}} NOT NULL,
    created_at  BIGINT        NOT NULL,
    updated_at  BIGINT        NOT NULL
){{.TableOptions}};
CREATE UNIQUE INDEX roles_project_name ON roles (project_id, name);

-- A binding names a role by name: a built-in one, or a custom role of the
-- same project.
CREATE TABLE role_bindings (
    principal_id VARCHAR(64) NOT NULL,
    project_id   VARCHAR(64) NOT NULL,
    role         VARCHAR(64) NOT NULL,
    created_at   BIGINT      NOT NULL,
    PRIMARY KEY (principal_id, project_id, role)
){{.TableOptions}};
CREATE INDEX role_bindings_project ON role_bindings (project_id, role);

-- Each app held one role in its own project (apps.role, admin or viewer);
-- it becomes that app's binding there, so existing keys keep working.
-- apps.role stays as the app's role in its own project, for display.
INSERT INTO role_bindings (principal_id, project_id, role, created_at)
SELECT id, project_id, role, created_at FROM apps;

-- +goose Down
DROP TABLE role_bindings;
DROP TABLE roles;

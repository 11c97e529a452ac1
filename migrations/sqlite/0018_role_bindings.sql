-- Role bindings, sqlite. Kept in step with ../postgres/0018_role_bindings.sql.
-- A binding gives a user (subject_kind 'user') or everyone in an identity-provider group
-- (subject_kind 'group', see user_groups) a role in one environment, or in all of them
-- (scope '*'). What a person may do is decided from their bindings alone
-- (switchyard_domain::access); users.role stays as the role given at creation.
CREATE TABLE role_bindings (
    id           BIGINT NOT NULL PRIMARY KEY,
    subject_kind TEXT   NOT NULL CHECK (subject_kind IN ('user', 'group')),
    subject      TEXT   NOT NULL,
    role         TEXT   NOT NULL CHECK (role IN ('viewer', 'deployer', 'approver', 'admin')),
    scope        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    UNIQUE (subject_kind, subject, role, scope)
);
CREATE INDEX role_bindings_by_subject ON role_bindings (subject_kind, subject);

-- Every existing user keeps exactly the role they had, now as a binding on all.
INSERT INTO role_bindings (id, subject_kind, subject, role, scope, created_at, created_by)
SELECT ROW_NUMBER() OVER (ORDER BY username), 'user', username, role, '*', created_at, 'migration'
FROM users;

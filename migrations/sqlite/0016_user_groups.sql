-- Groups a user belongs to, sqlite. Kept in step with ../postgres/0016_user_groups.sql.
-- For users who sign in through the identity provider the groups come from its group claim and
-- are rewritten at each sign-in; role bindings may name a group (`access::Subject::Group`).
CREATE TABLE user_groups (
    username   TEXT NOT NULL REFERENCES users (username),
    group_name TEXT NOT NULL,
    PRIMARY KEY (username, group_name)
);

//! Users, their tokens, workspaces and memberships in storage: the server's one user with its token
//! and default workspace, more memberships (`--member-of`), and which one is the default.

use rusqlite::{OptionalExtension, params};

use crate::store::{Store, StoreError, now_text, row};

impl Store {
    /// Makes sure a user, its token and its default workspace exist.
    pub fn seed(&self, username: &str, workspace: &str, token: &str) -> Result<(), StoreError> {
        let now = now_text();
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO users(username, created) VALUES (?1, ?2)",
                params![username, now],
            )?;
            c.execute(
                "INSERT OR IGNORE INTO workspaces(slug, name, created) VALUES (?1, ?1, ?2)",
                params![workspace, now],
            )?;
            c.execute(
                "INSERT OR IGNORE INTO memberships(username, workspace, is_admin, is_default) \
                    VALUES (?1, ?2, 1, 1)",
                params![username, workspace],
            )?;
            c.execute(
                "INSERT OR IGNORE INTO tokens(token, username, created) VALUES (?1, ?2, ?3)",
                params![token, username, now],
            )?;
            Ok(())
        })
    }

    /// Adds a workspace and a membership (admin or not) for `username`.
    pub fn add_membership(
        &self,
        username: &str,
        workspace: &str,
        is_admin: bool,
    ) -> Result<(), StoreError> {
        let now = now_text();
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO workspaces(slug, name, created) VALUES (?1, ?1, ?2)",
                params![workspace, now],
            )?;
            c.execute(
                "INSERT OR REPLACE INTO memberships(username, workspace, is_admin, is_default) \
                    VALUES (?1, ?2, ?3, 0)",
                params![username, workspace, is_admin],
            )?;
            Ok(())
        })
    }

    /// Marks `workspace` as `username`'s default membership, or none.
    pub fn set_default_membership(
        &self,
        username: &str,
        workspace: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE memberships SET is_default = (workspace IS ?2) WHERE username = ?1",
                params![username, workspace],
            )
            .map(|_| ())
        })
    }

    /// The user a token belongs to.
    pub fn user_for_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            row(c, "SELECT username FROM tokens WHERE token = ?1", [token], |r| r.get(0)).optional()
        })
    }

    /// A user's memberships: (workspace, is_admin, is_default).
    pub fn memberships(&self, username: &str) -> Result<Vec<(String, bool, bool)>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare_cached(
                "SELECT workspace, is_admin, is_default FROM memberships WHERE \
                    username = ?1 ORDER BY workspace",
            )?;
            let rows = s.query_map([username], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get::<_, i64>(2)? != 0))
            })?;
            rows.collect()
        })
    }

    /// All workspaces.
    pub fn workspaces(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare_cached("SELECT slug FROM workspaces ORDER BY slug")?;
            let rows = s.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }
}

//! Software environments and the workspace's Dask configuration overrides, as the public client
//! reads and makes them: `GET /api/v2/user/workspace/{ws}/dask-config-overrides` (before a cluster
//! create), and under `/api/v2/software-environment/account/{ws}`: create (`POST`), the alias by
//! name (`GET`, `DELETE` `alias/name/{name}`), a build's state (`build/{id}`) and its log
//! (`build/logs/{id}`).

use super::client::seg;
use super::requests::{CreateSoftwareEnv, JsonObject};
use super::retry::{Call, Op};
use super::{
    AliasPage, ApiError, BuildLogPage, Client, SoftwareAlias, SoftwareBuild, SpecRead, decode,
};

/// `/api/v2/software-environment/account/{ws}` and what follows it.
fn senv_path(workspace: &str, rest: &str) -> String {
    format!("/api/v2/software-environment/account/{}{rest}", seg(workspace))
}

impl Client {
    /// `GET /api/v2/user/workspace/{ws}/dask-config-overrides` (`Cloud._load_server_dask_config` in
    /// `coiled/v2/core.py`), which does not check the answer's status: an error status is no
    /// overrides, for the caller to warn of: `Ok(None)` when the server refused, and
    /// [`ApiError::Status`] when it failed or throttled (5xx or 429, after the retries), which a
    /// later read may not. An answer that is not an object is no overrides too.
    pub async fn dask_config_overrides(
        &self,
        op: &Op,
        workspace: &str,
    ) -> Result<Option<JsonObject>, ApiError> {
        let path = format!("/api/v2/user/workspace/{}/dask-config-overrides", seg(workspace));
        match self.get_json::<serde_json::Value>(op, &path, &[]).await {
            Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Ok(Some(JsonObject::new())),
            Err(e @ ApiError::Status { status, .. }) if status >= 500 || status == 429 => Err(e),
            Err(
                ApiError::Status { .. } | ApiError::NotFound { .. } | ApiError::Forbidden { .. },
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/v2/software-environment/account/{ws}` (`Cloud._create_software_environment_v2` in
    /// `coiled/core.py`). Sending the same body again names the same environment, and the server
    /// skips a rebuild of the same spec: it is sent as idempotent.
    pub async fn create_software_env(
        &self,
        op: &Op,
        workspace: &str,
        body: &CreateSoftwareEnv,
    ) -> Result<SoftwareAlias, ApiError> {
        let path = senv_path(workspace, "");
        let text = self
            .request(op, reqwest::Method::POST, &path, &[], Some(body), Call::Idempotent)
            .await?;
        decode(&self.url(&path), &text)
    }

    /// `GET /api/v2/software-environment/account/{ws}/build/{id}` (`Cloud._fetch_software_build`).
    pub async fn software_build(
        &self,
        op: &Op,
        workspace: &str,
        build: i64,
    ) -> Result<SoftwareBuild, ApiError> {
        self.get_json(op, &senv_path(workspace, &format!("/build/{build}")), &[]).await
    }

    /// `GET /api/v2/software-environment/account/{ws}/build/logs/{id}?limit=500[&pageToken=T]`
    /// (`Cloud._fetch_software_build_logs`).
    pub async fn software_build_logs(
        &self,
        op: &Op,
        workspace: &str,
        build: i64,
        page: Option<&str>,
    ) -> Result<BuildLogPage, ApiError> {
        let mut query = vec![("limit", "500".to_string())];
        if let Some(token) = page {
            query.push(("pageToken", token.to_string()));
        }
        self.get_json(op, &senv_path(workspace, &format!("/build/logs/{build}")), &query).await
    }

    /// `GET /api/v2/software-environment/account/{ws}/alias/name/{name}`
    /// (`Cloud._get_software_info`).
    pub async fn software_alias(
        &self,
        op: &Op,
        workspace: &str,
        name: &str,
    ) -> Result<SoftwareAlias, ApiError> {
        let alias = senv_path(workspace, &format!("/alias/name/{}", seg(name)));
        self.get_json(op, &alias, &[]).await
    }

    /// `GET /api/v2/software-environment/account/{ws}/spec/{id}` (`Cloud._get_software_spec`).
    pub async fn software_spec(
        &self,
        op: &Op,
        workspace: &str,
        spec: i64,
    ) -> Result<SpecRead, ApiError> {
        self.get_json(op, &senv_path(workspace, &format!("/spec/{spec}")), &[]).await
    }

    /// `GET /api/v2/software-environment/account/{ws}/alias?offset=…`, page after page until
    /// `count` are read (`Cloud._list_software_environments_page_v2`, through `_depaginate_v2`).
    pub async fn list_software_aliases(
        &self,
        op: &Op,
        workspace: &str,
    ) -> Result<Vec<SoftwareAlias>, ApiError> {
        let path = senv_path(workspace, "/alias");
        let mut all: Vec<SoftwareAlias> = Vec::new();
        loop {
            let page: AliasPage =
                self.get_json(op, &path, &[("offset", all.len().to_string())]).await?;
            let got = page.items.len();
            all.extend(page.items);
            if got == 0 || all.len() >= page.count {
                return Ok(all);
            }
        }
    }

    /// `DELETE /api/v2/software-environment/account/{ws}/alias/name/{name}`
    /// (`Cloud._delete_software_environment`); a 404 is an error the caller may take as gone.
    pub async fn delete_software_alias(
        &self,
        op: &Op,
        workspace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let alias = senv_path(workspace, &format!("/alias/name/{}", seg(name)));
        self.delete(op, &alias, &[]).await
    }
}

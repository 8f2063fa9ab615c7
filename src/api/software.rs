//! Software environments and the workspace's Dask configuration overrides, as `coiled.Cluster` reads
//! and makes them before a create: `GET /api/v2/user/workspace/{ws}/dask-config-overrides`, and for a
//! container image `POST /api/v2/software-environment/account/{ws}` then its build until it ends.

use super::client::seg;
use super::requests::{CreateContainerEnv, JsonObject};
use super::retry::{Call, Op};
use super::{ApiError, Client, SoftwareAlias, SoftwareBuild, decode};

impl Client {
    /// `GET /api/v2/user/workspace/{ws}/dask-config-overrides`: the Dask configuration the control
    /// plane sets for this workspace (`Cloud._load_server_dask_config` in `coiled/v2/core.py`).
    /// Anything but an object counts as no overrides.
    pub async fn dask_config_overrides(&self, op: &Op, workspace: &str) -> Result<JsonObject, ApiError> {
        let value: serde_json::Value =
            self.get_json(op, &format!("/api/v2/user/workspace/{}/dask-config-overrides", seg(workspace)), &[]).await?;
        Ok(match value {
            serde_json::Value::Object(map) => map,
            _ => JsonObject::new(),
        })
    }

    /// `POST /api/v2/software-environment/account/{ws}` with a container image
    /// (`Cloud._create_software_environment_v2` in `coiled/core.py`). The client names the environment
    /// after the image, so sending it again names the same environment: it is sent as idempotent.
    pub async fn create_container_env(&self, op: &Op, workspace: &str, body: &CreateContainerEnv) -> Result<SoftwareAlias, ApiError> {
        let path = format!("/api/v2/software-environment/account/{}", seg(workspace));
        let text = self.request(op, reqwest::Method::POST, &path, &[], Some(body), Call::Idempotent).await?;
        decode(&self.url(&path), &text)
    }

    /// `GET /api/v2/software-environment/account/{ws}/build/{id}` (`Cloud._fetch_software_build`).
    pub async fn software_build(&self, op: &Op, workspace: &str, build: i64) -> Result<SoftwareBuild, ApiError> {
        self.get_json(op, &format!("/api/v2/software-environment/account/{}/build/{build}", seg(workspace)), &[]).await
    }
}

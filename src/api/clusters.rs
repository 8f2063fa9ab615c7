//! Clusters and their workers: create (recovering lost answers by name), read, look up by name,
//! stop, and scale (`/api/v2/clusters/account/{ws}/…`,
//! `/api/v2/workers/account/{ws}/cluster/{id}/`).

use super::client::seg;
use super::requests::{CreateCluster, ScaleUp};
use super::retry::{self, Call, FailedAttempt, Op};
use super::{
    ApiError, Client, ClusterDetails, ClusterListItem, ClusterRef, CreatedCluster, Process, decode,
};

/// How many pages of 100 a list of clusters reads at most: 100,000 clusters, far beyond any real
/// workspace; a list that reaches it says so.
pub const LIST_CEILING_PAGES: usize = 1000;

/// A workspace's clusters, newest first, as listed.
#[derive(Clone, Debug, Default)]
pub struct ClusterList {
    pub items: Vec<ClusterListItem>,
    /// Whether the list was read to its end (else it stopped at [`LIST_CEILING_PAGES`]).
    pub complete: bool,
}

/// The outcome of a create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: i64,
    /// The server said a running cluster of that name already existed.
    pub existing: bool,
    /// The answer came after a lost or failed attempt (by lookup or a second send).
    pub recovered: bool,
}

impl Client {
    fn cluster_path(workspace: &str) -> String {
        format!("/api/v2/clusters/account/{}/", seg(workspace))
    }

    /// `POST /api/v2/clusters/account/{ws}/`, recovering lost answers: when an attempt gets no
    /// answer or a gateway error, the cluster is looked up by name before anything is sent again,
    /// and a cluster found is this create's (the caller made sure the name was free just before). A
    /// plain 500 is the server refusing this body: it is not sent again. [`Created::recovered`]
    /// tells the caller when the answer was recovered, so that `existing: true` on a first answer
    /// can still be told apart.
    pub async fn create_cluster(
        &self,
        op: &Op,
        workspace: &str,
        body: &CreateCluster,
    ) -> Result<Created, ApiError> {
        let path = Self::cluster_path(workspace);
        let path = path.as_str();
        retry::run(op, &self.config.retry, "create cluster", |attempt| async move {
            let sent =
                self.send_once(&reqwest::Method::POST, path, &[], Some(body), Call::Create).await;
            let failure = match sent {
                Ok(text) => {
                    let CreatedCluster { id, existing } =
                        decode(&self.url(path), &text).map_err(FailedAttempt::fatal)?;
                    return Ok(Created { id, existing, recovered: attempt > 1 });
                }
                Err(f) => f,
            };
            let ambiguous = failure.unreachable.is_none()
                && matches!(
                    failure.error,
                    ApiError::Transport { .. } | ApiError::Status { status: 500 | 502 | 504, .. }
                );
            if !ambiguous {
                return Err(failure);
            }
            tracing::warn!(attempt, error = %failure.error, "cluster create got no answer; \
                checking whether it happened");
            match self.find_cluster_by_name(op, workspace, &body.name).await {
                Ok(Some(found)) => {
                    tracing::info!(
                        cluster = found.id,
                        "the cluster was created; its answer was lost"
                    );
                    Ok(Created { id: found.id, existing: false, recovered: true })
                }
                Ok(None) => {
                    let plain_500 = matches!(failure.error, ApiError::Status { status: 500, .. });
                    Err(FailedAttempt { retryable: !plain_500, ..failure })
                }
                Err(lookup) => Err(FailedAttempt::fatal(ApiError::CreateUnconfirmed {
                    name: body.name.clone(),
                    cause: Box::new(failure.error),
                    lookup: Box::new(lookup),
                })),
            }
        })
        .await
    }

    /// `GET /api/v2/clusters/account/{ws}/?limit=100&offset=…&just_mine=0`, page after page until
    /// an empty one, the end as `Cloud._list_clusters_page` in `coiled/v2/core.py` sees it. The
    /// client stops after `max_pages` (20 by default) and says nothing; this reads to the end, up
    /// to [`LIST_CEILING_PAGES`], and [`ClusterList::complete`] says whether it got there.
    pub async fn list_clusters(&self, op: &Op, workspace: &str) -> Result<ClusterList, ApiError> {
        const PAGE: usize = 100;
        let path = Self::cluster_path(workspace);
        let mut items = Vec::new();
        for page in 0..LIST_CEILING_PAGES {
            let query = [
                ("limit", PAGE.to_string()),
                ("offset", (PAGE * page).to_string()),
                ("just_mine", "0".to_string()),
            ];
            let batch: Vec<ClusterListItem> = self.get_json(op, &path, &query).await?;
            if batch.is_empty() {
                return Ok(ClusterList { items, complete: true });
            }
            items.extend(batch);
        }
        Ok(ClusterList { items, complete: false })
    }

    /// `GET /api/v2/clusters/account/{ws}/id/{id}`.
    pub async fn get_cluster(
        &self,
        op: &Op,
        workspace: &str,
        id: i64,
    ) -> Result<ClusterDetails, ApiError> {
        self.get_json(op, &format!("{}id/{id}", Self::cluster_path(workspace)), &[]).await
    }

    /// `GET /api/v2/clusters/account/{ws}/name/{name}`: the active cluster with this name, if any.
    pub async fn find_cluster_by_name(
        &self,
        op: &Op,
        workspace: &str,
        name: &str,
    ) -> Result<Option<ClusterRef>, ApiError> {
        let path = format!("{}name/{}", Self::cluster_path(workspace), seg(name));
        match self.get_json(op, &path, &[("include_paused", "0".to_string())]).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /api/v2/clusters/account/{ws}/id/{id}`: asks the cluster to stop, with the reason
    /// cut to its first 6,000 characters and left out when empty, as `Cloud._delete_cluster` sends
    /// it (which keeps the URL under 8,192 bytes).
    pub async fn stop_cluster(
        &self,
        op: &Op,
        workspace: &str,
        id: i64,
        reason: &str,
    ) -> Result<(), ApiError> {
        let query: Vec<(&str, String)> =
            if reason.is_empty() { Vec::new() } else { vec![("reason", stop_reason(reason))] };
        self.delete(op, &format!("{}id/{id}", Self::cluster_path(workspace)), &query).await
    }

    fn workers_path(workspace: &str, id: i64) -> String {
        format!("/api/v2/workers/account/{}/cluster/{id}/", seg(workspace))
    }

    /// All workers of a cluster, paging with `limit`/`offset` until an empty page.
    pub async fn list_workers(
        &self,
        op: &Op,
        workspace: &str,
        id: i64,
    ) -> Result<Vec<Process>, ApiError> {
        let path = Self::workers_path(workspace, id);
        let mut out = Vec::new();
        for page in 0..1000 {
            let query = [("limit", "100".to_string()), ("offset", (page * 100).to_string())];
            let batch: Vec<Process> = self.get_json(op, &path, &query).await?;
            if batch.is_empty() {
                break;
            }
            out.extend(batch);
        }
        Ok(out)
    }

    /// Adds `n` workers (`POST …/workers/…` with `n_workers`, which counts workers to add).
    pub async fn add_workers(
        &self,
        op: &Op,
        workspace: &str,
        id: i64,
        n: i64,
    ) -> Result<(), ApiError> {
        self.request(
            op,
            reqwest::Method::POST,
            &Self::workers_path(workspace, id),
            &[],
            Some(&ScaleUp { n_workers: n, reason: "terraform".into() }),
            Call::Write,
        )
        .await
        .map(|_| ())
    }

    /// Removes the named workers (`DELETE …/workers/…?name=…`).
    pub async fn remove_workers(
        &self,
        op: &Op,
        workspace: &str,
        id: i64,
        names: &[String],
    ) -> Result<(), ApiError> {
        for chunk in names.chunks(200) {
            let query: Vec<(&str, String)> = chunk.iter().map(|n| ("name", n.clone())).collect();
            self.delete(op, &Self::workers_path(workspace, id), &query).await?;
        }
        Ok(())
    }
}

/// A stop's reason as Coiled's client sends it: `reason[:6000]`, the first 6,000 characters.
pub fn stop_reason(reason: &str) -> String {
    reason.chars().take(6000).collect()
}

#[cfg(test)]
mod tests {
    use super::stop_reason;

    #[test]
    fn stop_reasons_are_cut_as_the_client_cuts_them() {
        assert_eq!(stop_reason("done"), "done");
        let long = "é".repeat(7000);
        assert_eq!(
            stop_reason(&long).chars().count(),
            6000,
            "characters, as a Python slice counts"
        );
        assert_eq!(stop_reason(&"x".repeat(6000)).len(), 6000);
    }
}

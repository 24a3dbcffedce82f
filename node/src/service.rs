//! What each control request does. The service is the node's API: the control server calls
//! it for requests from the socket, and the CLI calls it directly when it works on a data
//! directory whose node is not running. Every write is durable before the answer is returned.

use std::time::Instant;

use automerge::Automerge;

use crate::config::FacilityConfig;
use crate::control::proto::{ErrorKind, Request, Response, StatusReport};
use crate::documents::{self, Audience, DocKind, note};
use crate::ids::{FacilityCode, NodeId};
use crate::storage::{StoreError, StoreHandle};

/// The node's API over its store.
#[derive(Debug)]
pub struct Service {
    store: StoreHandle,
    node_id: NodeId,
    facility: FacilityConfig,
    started: Option<Instant>,
}

impl Service {
    /// A service for a running node (`online`: it reports uptime) or for offline access.
    pub fn new(
        store: StoreHandle,
        node_id: NodeId,
        facility: FacilityConfig,
        online: bool,
    ) -> Service {
        Service {
            store,
            node_id,
            facility,
            started: online.then(Instant::now),
        }
    }

    /// The store handle.
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// Answers one request. Never panics on any request content.
    pub async fn handle(&self, req: Request) -> Response {
        match self.dispatch(req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }

    fn audience(&self, codes: Vec<FacilityCode>) -> Audience {
        let mut a = Audience::new(codes);
        a.insert(self.facility.code.clone());
        a
    }

    async fn dispatch(&self, req: Request) -> Result<Response, StoreError> {
        match req {
            Request::Status => {
                let store = self.store.call(|b| b.stats()).await?;
                Ok(Response::Status(StatusReport {
                    version: crate::VERSION.to_string(),
                    node_id: self.node_id,
                    facility: self.facility.clone(),
                    uptime_secs: self.started.map(|s| s.elapsed().as_secs()),
                    store,
                }))
            }
            Request::DocList { kind } => Ok(Response::Docs(
                self.store.call(move |b| b.list(kind)).await?,
            )),
            Request::DocShow { id } => {
                self.store
                    .call(move |b| {
                        let id = b.resolve(&id)?;
                        let json = b.read(&id, |d| documents::to_json(d).to_string())?;
                        Ok(Response::Doc {
                            info: b.info(&id)?,
                            json,
                        })
                    })
                    .await
            }
            Request::DocExport { id } => {
                self.store
                    .call(move |b| {
                        let id = b.resolve(&id)?;
                        let bytes = b.export(&id)?;
                        Ok(Response::Exported {
                            info: b.info(&id)?,
                            bytes,
                        })
                    })
                    .await
            }
            Request::DocImport {
                bytes,
                kind,
                audience,
            } => {
                let audience = self.audience(audience);
                let info = self
                    .store
                    .call(move |b| b.import(&bytes, kind, audience))
                    .await?;
                tracing::info!(doc = %info.id, kind = %info.kind, "document imported");
                Ok(Response::Written(info))
            }
            Request::NoteAdd {
                title,
                text,
                audience,
            } => {
                note::validate(&title, text.as_deref())
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                let audience = self.audience(audience);
                let by = self.facility.code.clone();
                let info = self
                    .store
                    .call(move |b| {
                        let mut doc = Automerge::new().with_actor(b.actor().clone());
                        note::init(
                            &mut doc,
                            &title,
                            text.as_deref().map(|t| (&by, documents::now_ms(), t)),
                        )
                        .map_err(|e| StoreError::InvalidDocument(e.to_string()))?;
                        b.create(DocKind::Note, audience, doc)
                    })
                    .await?;
                tracing::info!(doc = %info.id, "note created");
                Ok(Response::Written(info))
            }
            Request::NoteAppend { id, text } => {
                let by = self.facility.code.clone();
                let info = self
                    .store
                    .call(move |b| {
                        let id = b.resolve(&id)?;
                        if b.info(&id)?.kind != DocKind::Note {
                            return Err(StoreError::Invalid(format!(
                                "document {id} is not a note"
                            )));
                        }
                        let ((), info) = b.edit(&id, |d| {
                            note::append(d, &by, documents::now_ms(), &text)
                                .map_err(|e| StoreError::Invalid(e.to_string()))
                        })?;
                        Ok(info)
                    })
                    .await?;
                Ok(Response::Written(info))
            }
        }
    }
}

/// The response for a failed request.
pub fn error_response(e: &StoreError) -> Response {
    let kind = match e {
        StoreError::NotFound(_) => ErrorKind::NotFound,
        StoreError::Ambiguous { .. } | StoreError::InvalidDocument(_) | StoreError::Invalid(_) => {
            ErrorKind::InvalidInput
        }
        StoreError::Closed => ErrorKind::Unavailable,
        _ => ErrorKind::Storage,
    };
    Response::Error {
        kind,
        message: e.to_string(),
    }
}

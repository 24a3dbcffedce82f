//! Outreach events: created by the host facility; visits and lectures logged by any device of
//! the host or the township visited, each under a fresh random key.

use automerge::Automerge;

use super::{Failure, Service, day_number, invalid, random_key};
use crate::control::proto::{OutreachSummary, OutreachView, Response};
use crate::documents::outreach::{self, LectureInput, OutreachInput, VisitInput};
use crate::documents::{self, Audience, DocKind};
use crate::ids::DocId;
use crate::storage::{Batch, StoreError};

fn view(b: &mut Batch<'_>, id: &DocId, added: Option<String>) -> Result<OutreachView, StoreError> {
    let info = b.info(id)?;
    if info.kind != DocKind::Outreach {
        return Err(StoreError::Invalid(format!(
            "document {id} is not an outreach event"
        )));
    }
    let event = b.read(id, outreach::read)?.map_err(StoreError::Invalid)?;
    Ok(OutreachView { info, event, added })
}

/// Every outreach event this node holds.
pub(super) fn events(b: &mut Batch<'_>) -> Result<Vec<(DocId, outreach::Outreach)>, StoreError> {
    let mut out = Vec::new();
    for info in b.list(Some(DocKind::Outreach))? {
        match b.read(&info.id, outreach::read)? {
            Ok(e) => out.push((info.id, e)),
            Err(e) => {
                tracing::warn!(doc = %info.id, error = %e, "unreadable outreach event skipped")
            }
        }
    }
    Ok(out)
}

enum Record {
    Visit(Box<VisitInput>),
    Lecture(Box<LectureInput>),
}

impl Service {
    pub(super) async fn outreach_create(&self, input: OutreachInput) -> Result<Response, Failure> {
        let me = self.config().facility.code;
        let now = documents::now_ms();
        let number = day_number(&format!("{me}-YZ"), now, &self.config().zone());
        let event = outreach::build(input, me.as_str(), number, now).map_err(invalid)?;
        self.known_facility("township", &event.township).await?;
        let audience = Audience::new(
            [&event.host, &event.township]
                .into_iter()
                .filter_map(|c| c.parse().ok()),
        );
        let v = self
            .store
            .call(move |b| {
                let mut doc = Automerge::new().with_actor(b.actor().clone());
                outreach::write_new(&mut doc, &event).map_err(StoreError::InvalidDocument)?;
                let info = b.create(DocKind::Outreach, audience, doc)?;
                view(b, &info.id, None)
            })
            .await?;
        tracing::info!(doc = %v.info.id, number = %v.event.number, township = %v.event.township, "outreach event created");
        Ok(Response::Outreach(Box::new(v)))
    }

    async fn outreach_add(&self, id: String, record: Record) -> Result<Response, Failure> {
        let cfg = self.config();
        let me = cfg.facility.code.to_string();
        let county = cfg.facility.kind == crate::config::FacilityKind::CountyHospital;
        let device = self.node_id.to_string();
        let v = self
            .store
            .call(move |b| {
                let id = b.resolve(&id)?;
                let event = view(b, &id, None)?.event;
                if !county && me != event.host && me != event.township {
                    return Err(StoreError::Invalid(format!(
                        "{me} is neither the host {} nor the township {} of this event",
                        event.host, event.township
                    )));
                }
                let k = random_key();
                match record {
                    Record::Visit(input) => {
                        let mut input = *input;
                        if let Some(r) = input.referral.take() {
                            let rid = b.resolve(&r)?;
                            if b.info(&rid)?.kind != DocKind::Referral {
                                return Err(StoreError::Invalid(format!(
                                    "referral: {rid} is not a referral"
                                )));
                            }
                            input.referral = Some(rid.to_string());
                        }
                        let visit = outreach::build_visit(input, &event, &me, &device)
                            .map_err(|e| StoreError::Invalid(e.to_string()))?;
                        b.edit(&id, |d| {
                            outreach::add_record(d, "visits", &k, &visit)
                                .map_err(StoreError::InvalidDocument)
                        })?;
                    }
                    Record::Lecture(input) => {
                        let lecture = outreach::build_lecture(*input, &event)
                            .map_err(|e| StoreError::Invalid(e.to_string()))?;
                        b.edit(&id, |d| {
                            outreach::add_record(d, "lectures", &k, &lecture)
                                .map_err(StoreError::InvalidDocument)
                        })?;
                    }
                }
                view(b, &id, Some(k))
            })
            .await?;
        // Keys and counts only: visits may name patients.
        tracing::debug!(doc = %v.info.id, visits = v.event.visits.len(), lectures = v.event.lectures.len(), "outreach record added");
        Ok(Response::Outreach(Box::new(v)))
    }

    pub(super) async fn outreach_visit(
        &self,
        id: String,
        input: Box<VisitInput>,
    ) -> Result<Response, Failure> {
        self.outreach_add(id, Record::Visit(input)).await
    }

    pub(super) async fn outreach_lecture(
        &self,
        id: String,
        input: Box<LectureInput>,
    ) -> Result<Response, Failure> {
        self.outreach_add(id, Record::Lecture(input)).await
    }

    pub(super) async fn outreach_show(&self, id: String) -> Result<Response, Failure> {
        let v = self
            .store
            .call(move |b| {
                let id = b.resolve(&id)?;
                view(b, &id, None)
            })
            .await?;
        Ok(Response::Outreach(Box::new(v)))
    }

    pub(super) async fn outreach_list(&self) -> Result<Response, Failure> {
        let mut list: Vec<OutreachSummary> = self
            .store
            .call(events)
            .await?
            .into_iter()
            .map(|(id, e)| OutreachSummary {
                id,
                number: e.number,
                title: e.title,
                host: e.host,
                township: e.township,
                start: e.start,
                end: e.end,
                visits: e.visits.len(),
                lectures: e.lectures.len(),
                target_per_day: e.target_per_day,
            })
            .collect();
        list.sort_by(|a, b| (&b.start, &a.number).cmp(&(&a.start, &b.number)));
        Ok(Response::OutreachEvents(list))
    }
}

//! `GET /v1/me`: who the caller is, their role and the teams they manage.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::people::PersonJson;
use crate::db::people;
use crate::domain::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
struct MeJson {
    #[serde(flatten)]
    person: PersonJson,
    managed_team_ids: Vec<String>,
}

/// `GET /v1/me`.
pub async fn show(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let person_id = caller.person_id.clone();
    let person = state
        .db
        .read(move |connection| people::find(connection, &person_id))
        .await?
        .ok_or(ApiError::NotFound("person"))?;
    Ok(HttpResponse::Ok().json(MeJson {
        person: person.into(),
        managed_team_ids: caller.managed_team_ids,
    }))
}

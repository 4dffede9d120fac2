//! CRM handlers of /api/v1: users' rights, groups and field access, the card form, lists,
//! partners with their history and table. Every rule is the crm crate's; this only maps
//! HTTP onto it.

use crate::api::{admin, body, Caller, QueryParams};
use crate::{AppState, Problem};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kolokol_crm::access::{Group, GroupSpec, Viewer};
use kolokol_crm::calendar::{CalendarEvent, EventSpec};
use kolokol_crm::duplicates::{DuplicateGroup, Merge};
use kolokol_crm::exchange::{Export, Format, Import, ImportReport};
use kolokol_crm::files::{Attachment, Owner};
use kolokol_crm::form::{confirmed, Field, FieldSpec, Form, List, ListItem};
use kolokol_crm::mail::Email;
use kolokol_crm::partner_calls::PartnerCalls;
use kolokol_crm::partners::{HistoryEntry, Partner};
use kolokol_crm::table::{TablePage, TableQuery};
use kolokol_crm::tasks::{Task, TaskChange, TaskComment, TaskSpec};
use kolokol_crm::users::UserChange;
use kolokol_crm::values::DateRange;
use kolokol_crm::User;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `?confirm=удалить` (or `delete`), asked before removing users, groups, fields, lists.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Confirm {
    confirm: Option<String>,
}

pub(crate) async fn viewer(st: &AppState, caller: Caller) -> Result<(Viewer, Form), Problem> {
    Ok((st.store.viewer(caller.0).await?, st.store.form().await?))
}

pub async fn update_user(
    State(st): State<AppState>,
    caller: Caller,
    token: Option<axum::Extension<crate::api::CallerToken>>,
    Path(id): Path<i64>,
    json: Result<Json<UserChange>, JsonRejection>,
) -> Result<Json<User>, Problem> {
    let change = body(json)?;
    // An administrator cannot lock themselves out (nor the last way in with them).
    if caller.0.id == id {
        for (field, off) in [("admin", change.admin), ("active", change.active)] {
            if caller.0.admin && off == Some(false) {
                return Err(Problem::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    field,
                    "you cannot take this from yourself; another administrator can",
                ));
            }
        }
    }
    // Anyone may change their own name and password; the rest is the admin's.
    let own_settings = change.active.is_none()
        && change.admin.is_none()
        && change.contacts.is_none()
        && change.tasks.is_none()
        && change.reports.is_none();
    if !(caller.0.admin || (caller.0.id == id && own_settings)) {
        return Err(Problem::forbidden());
    }
    // Your own new password keeps you signed in here, and nowhere else.
    let keep = token
        .filter(|_| caller.0.id == id)
        .map(|axum::Extension(t)| t.0);
    let user = st.store.update_user(id, &change, keep.as_deref()).await?;
    st.directory.reload(&st.store, &st.realm).await?;
    st.routing.reload(&st.store).await?;
    Ok(Json(user))
}

pub async fn delete_user(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    QueryParams(c): QueryParams<Confirm>,
) -> Result<StatusCode, Problem> {
    admin(&caller)?;
    confirmed(c.confirm.as_deref())?;
    if id == caller.0.id {
        return Err(Problem::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
            "you cannot delete yourself",
        ));
    }
    st.store.delete_user(id).await?;
    st.directory.reload(&st.store, &st.realm).await?;
    st.routing.reload(&st.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_groups(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Group>>, Problem> {
    admin(&caller)?;
    Ok(Json(st.store.groups().await?))
}

pub async fn create_group(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<GroupSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<Group>), Problem> {
    admin(&caller)?;
    let spec = body(json)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.save_group(None, &spec).await?),
    ))
}

pub async fn replace_group(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    json: Result<Json<GroupSpec>, JsonRejection>,
) -> Result<Json<Group>, Problem> {
    admin(&caller)?;
    let spec = body(json)?;
    Ok(Json(st.store.save_group(Some(id), &spec).await?))
}

pub async fn delete_group(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    QueryParams(c): QueryParams<Confirm>,
) -> Result<StatusCode, Problem> {
    admin(&caller)?;
    confirmed(c.confirm.as_deref())?;
    st.store.delete_group(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The form as the caller may see it: the fields they see, and every list.
pub async fn form(State(st): State<AppState>, caller: Caller) -> Result<Json<Form>, Problem> {
    let (viewer, mut form) = viewer(&st, caller).await?;
    form.fields.retain(|f| viewer.sees(f));
    Ok(Json(form))
}

pub async fn create_field(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<FieldSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<Field>), Problem> {
    admin(&caller)?;
    let spec = body(json)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_field(&spec).await?),
    ))
}

/// A field's new definition; `confirm_loss` accepts losing values that do not fit a new type.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct FieldChange {
    #[serde(flatten)]
    spec: FieldSpec,
    #[serde(default)]
    confirm_loss: bool,
}

pub async fn replace_field(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    json: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Field>, Problem> {
    admin(&caller)?;
    let mut raw = body(json)?;
    let confirm_loss = raw
        .as_object_mut()
        .and_then(|o| o.remove("confirm_loss"))
        .map(|v| v.as_bool() == Some(true))
        .unwrap_or(false);
    let change = FieldChange {
        spec: serde_json::from_value(raw).map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid body",
                e.to_string(),
            )
        })?,
        confirm_loss,
    };
    Ok(Json(
        st.store
            .update_field(id, &change.spec, change.confirm_loss)
            .await?,
    ))
}

pub async fn delete_field(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    QueryParams(c): QueryParams<Confirm>,
) -> Result<StatusCode, Problem> {
    admin(&caller)?;
    confirmed(c.confirm.as_deref())?;
    st.store.delete_field(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    name: String,
    #[serde(default)]
    items: Vec<ListItem>,
}

pub async fn create_list(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<ListSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<List>), Problem> {
    admin(&caller)?;
    let spec = body(json)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_list(&spec.name, &spec.items).await?),
    ))
}

pub async fn replace_list(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    json: Result<Json<ListSpec>, JsonRejection>,
) -> Result<Json<List>, Problem> {
    admin(&caller)?;
    let spec = body(json)?;
    Ok(Json(
        st.store.replace_list(id, &spec.name, &spec.items).await?,
    ))
}

pub async fn delete_list(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    QueryParams(c): QueryParams<Confirm>,
) -> Result<StatusCode, Problem> {
    admin(&caller)?;
    confirmed(c.confirm.as_deref())?;
    st.store.delete_list(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A card's values by field latin name.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerValues {
    values: Map<String, Value>,
}

pub async fn create_partner(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<PartnerValues>, JsonRejection>,
) -> Result<(StatusCode, Json<Partner>), Problem> {
    let (viewer, form) = viewer(&st, caller).await?;
    let p = body(json)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_partner(&viewer, &form, &p.values).await?),
    ))
}

pub async fn partner(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Partner>, Problem> {
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(Json(st.store.partner(&viewer, &form, id).await?))
}

pub async fn update_partner(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    json: Result<Json<PartnerValues>, JsonRejection>,
) -> Result<Json<Partner>, Problem> {
    let (viewer, form) = viewer(&st, caller).await?;
    let p = body(json)?;
    Ok(Json(
        st.store
            .update_partner(&viewer, &form, id, &p.values)
            .await?,
    ))
}

pub async fn delete_partner(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    QueryParams(c): QueryParams<Confirm>,
) -> Result<StatusCode, Problem> {
    confirmed(c.confirm.as_deref())?;
    let viewer = st.store.viewer(caller.0).await?;
    st.store.delete_partner(&viewer, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn partner_history(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<HistoryEntry>>, Problem> {
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(Json(st.store.partner_history(&viewer, &form, id).await?))
}

pub async fn partner_calls(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<PartnerCalls>, Problem> {
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(Json(st.store.partner_calls(&viewer, &form, id).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct DuplicateQuery {
    field: Option<String>,
}

/// `GET /api/v1/partners/duplicates?field=<latin>`: partners sharing a value (by default
/// of any phone or e-mail field).
pub async fn duplicates(
    State(st): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<DuplicateQuery>,
) -> Result<Json<Vec<DuplicateGroup>>, Problem> {
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(Json(
        st.store
            .duplicates(&viewer, &form, q.field.as_deref())
            .await?,
    ))
}

pub async fn merge_partners(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<Merge>, JsonRejection>,
) -> Result<Json<Partner>, Problem> {
    let merge = body(json)?;
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(Json(st.store.merge_partners(&viewer, &form, &merge).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct FileName {
    name: Option<String>,
}

/// The request's file: its bytes and `?name=`.
fn upload(
    q: FileName,
    bytes: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(String, axum::body::Bytes), Problem> {
    let bytes = bytes.map_err(|e| Problem::field(e.status(), "file", e.body_text()))?;
    let name = q.name.ok_or_else(|| {
        Problem::field(StatusCode::UNPROCESSABLE_ENTITY, "name", "the file's name")
    })?;
    Ok((name, bytes))
}

/// A stored file as a download under its original name.
fn send_file(file: Attachment, bytes: Vec<u8>) -> Response {
    // RFC 5987: the original name, percent-encoded UTF-8.
    const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    let encoded = percent_encoding::utf8_percent_encode(&file.name, ATTR);
    (
        [
            (header::CONTENT_TYPE, file.content_type),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename*=UTF-8''{encoded}"),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response()
}

/// `POST /api/v1/partners/{id}/files?name=<original name>` with the file as the body.
pub async fn add_file(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    QueryParams(q): QueryParams<FileName>,
    bytes: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Attachment>), Problem> {
    let (name, bytes) = upload(q, bytes)?;
    let viewer = st.store.viewer(caller.0).await?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.add_file(&viewer, id, &name, &bytes).await?),
    ))
}

pub async fn list_files(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Attachment>>, Problem> {
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(Json(st.store.partner_files(&viewer, &form, id).await?))
}

pub async fn download_file(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, file)): Path<(i64, i64)>,
) -> Result<Response, Problem> {
    let (viewer, form) = viewer(&st, caller).await?;
    let (file, bytes) = st.store.partner_file(&viewer, &form, id, file).await?;
    Ok(send_file(file, bytes))
}

pub async fn delete_file(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, file)): Path<(i64, i64)>,
) -> Result<StatusCode, Problem> {
    let viewer = st.store.viewer(caller.0).await?;
    st.store.delete_file(&viewer, id, file).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/tasks/{id}/files?name=<original name>` with the file as the body.
pub async fn add_task_file(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    QueryParams(q): QueryParams<FileName>,
    bytes: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Attachment>), Problem> {
    let (name, bytes) = upload(q, bytes)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.add_task_file(&caller.0, id, &name, &bytes).await?),
    ))
}

pub async fn list_task_files(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Attachment>>, Problem> {
    st.store.task_for(&caller.0, id).await?;
    Ok(Json(st.store.files(Owner::Task(id)).await?))
}

pub async fn download_task_file(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, file)): Path<(i64, i64)>,
) -> Result<Response, Problem> {
    st.store.task_for(&caller.0, id).await?;
    let (file, bytes) = st.store.file_content(Owner::Task(id), file).await?;
    Ok(send_file(file, bytes))
}

pub async fn delete_task_file(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, file)): Path<(i64, i64)>,
) -> Result<StatusCode, Problem> {
    st.store.delete_task_file(&caller.0, id, file).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A query string's pairs, in order.
pub(crate) fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, Problem> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "Bad query", e.to_string()))
}

/// The table's query (see [`TableQuery::from_pairs`]) from the request's query string.
pub(crate) fn table_query(
    raw: Option<&str>,
    extra: &[&str],
) -> Result<(TableQuery, BTreeMap<String, String>), Problem> {
    Ok(TableQuery::from_pairs(query_pairs(raw)?, extra)?)
}

/// `GET /api/v1/partners?q=…&filter.<latin>=…&sort=[-]<latin>&after=…&limit=…`
pub async fn table(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<TablePage>, Problem> {
    let (q, _) = table_query(raw.as_deref(), &[])?;
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(Json(st.store.partner_table(&viewer, &form, &q).await?))
}

fn format_of(params: &BTreeMap<String, String>) -> Result<Format, Problem> {
    Ok(Format::parse(
        params.get("format").map_or("xlsx", String::as_str),
    )?)
}

pub(crate) fn download(format: Format, name: &str, bytes: impl Into<axum::body::Body>) -> Response {
    let ext = match format {
        Format::Csv => "csv",
        Format::Xlsx => "xlsx",
    };
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{ext}\""),
            ),
        ],
        bytes.into(),
    )
        .into_response()
}

/// `GET /api/v1/partners/export?format=xlsx|csv` and the table's parameters: every
/// matching partner, the viewer's columns (the reports right). A CSV is sent as it is
/// read, a page at a time.
pub async fn export_partners(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let (q, params) = table_query(raw.as_deref(), &["format"])?;
    let format = format_of(&params)?;
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(
        match st.store.export_partners(&viewer, &form, &q, format).await? {
            Export::File(bytes) => download(format, "partners", bytes),
            Export::Csv(pages) => {
                let pieces = futures_util::stream::try_unfold(pages, |mut pages| async move {
                    let piece = pages.next_piece().await.inspect_err(|e| {
                        // The answer has begun: the client sees it cut off.
                        tracing::warn!("partner export stopped: {e}");
                    })?;
                    Ok::<_, kolokol_crm::StoreError>(
                        piece.map(|p| (axum::body::Bytes::from(p), pages)),
                    )
                });
                download(format, "partners", axum::body::Body::from_stream(pieces))
            }
        },
    )
}

/// `GET /api/v1/lists/{id}/export?format=xlsx|csv` (the admin's).
pub async fn export_list(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let (_, params) = table_query(raw.as_deref(), &["format"])?;
    let format = format_of(&params)?;
    let viewer = st.store.viewer(caller.0).await?;
    let bytes = st.store.export_list(&viewer, id, format).await?;
    Ok(download(format, &format!("list-{id}"), bytes))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ImportParams {
    #[serde(default = "xlsx")]
    format: String,
    #[serde(default)]
    dry_run: bool,
    /// JSON object: column header → field latin name.
    mapping: Option<String>,
}

fn xlsx() -> String {
    "xlsx".into()
}

/// `POST /api/v1/partners/import?format=csv|xlsx&dry_run=true&mapping={…}` with the file
/// as the body. The caller and their right are checked before the body is read; then it
/// is read up to the route's body limit.
pub async fn import_partners(
    State(st): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<ImportParams>,
    request: axum::extract::Request,
) -> Result<Json<ImportReport>, Problem> {
    let format = Format::parse(&p.format)?;
    let mapping: Option<BTreeMap<String, String>> = match &p.mapping {
        Some(m) => Some(serde_json::from_str(m).map_err(|e| {
            Problem::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "mapping",
                format!("a JSON object of column → field: {e}"),
            )
        })?),
        None => None,
    };
    let (viewer, form) = viewer(&st, caller).await?;
    if !viewer.works_with_contacts() {
        return Err(kolokol_crm::StoreError::Forbidden(
            "importing partners needs the contacts right".into(),
        )
        .into());
    }
    let bytes = axum::body::Bytes::from_request(request, &st)
        .await
        .map_err(|e| Problem::field(e.status(), "file", e.body_text()))?;
    let (notices, me) = (st.notices.clone(), viewer.user.id);
    let report = st
        .store
        .import_partners(
            &viewer,
            &form,
            Import {
                format,
                bytes,
                mapping: mapping.as_ref(),
                dry_run: p.dry_run,
            },
            // Progress to the importer's live sockets.
            |done, total| {
                let _ = notices.send(crate::Notice {
                    user_id: me,
                    body: serde_json::json!({"type": "import", "done": done, "total": total}),
                });
            },
        )
        .await?;
    Ok(Json(report))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct EventRange {
    /// RFC 3339 instants: a month or week view's bounds.
    from: String,
    to: String,
    /// An admin may look at another user's calendar, or `*` for everyone's.
    user: Option<String>,
}

fn instant(field: &'static str, s: &str) -> Result<i64, Problem> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            Problem::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                field,
                "an RFC 3339 date-time",
            )
        })
}

pub async fn list_events(
    State(st): State<AppState>,
    Caller(me): Caller,
    QueryParams(q): QueryParams<EventRange>,
) -> Result<Json<Vec<CalendarEvent>>, Problem> {
    let (from, to) = (instant("from", &q.from)?, instant("to", &q.to)?);
    let user = match q.user.as_deref() {
        None => Some(me.id),
        Some(_) if !me.admin => return Err(Problem::forbidden()),
        Some("*") => None,
        Some(login) => Some(st.store.user_by_login(login).await?.id),
    };
    Ok(Json(st.store.events(user, from, to).await?))
}

pub async fn create_event(
    State(st): State<AppState>,
    Caller(me): Caller,
    json: Result<Json<EventSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<CalendarEvent>), Problem> {
    let spec = body(json)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_event(&me, &spec).await?),
    ))
}

pub async fn event(
    State(st): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> Result<Json<CalendarEvent>, Problem> {
    let e = st.store.event(id).await?;
    if !(me.admin || e.assignee == me.login || e.initiator.as_deref() == Some(me.login.as_str())) {
        return Err(Problem::forbidden());
    }
    Ok(Json(e))
}

pub async fn complete_event(
    State(st): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> Result<Json<CalendarEvent>, Problem> {
    Ok(Json(st.store.complete_event(&me, id).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskView {
    /// The calendar's period, `from..to` (dates); none: the whole board.
    period: Option<String>,
}

/// `GET /api/v1/tasks[?period=from..to]`: the board, or the tasks of a calendar period.
pub async fn list_tasks(
    State(st): State<AppState>,
    Caller(me): Caller,
    QueryParams(view): QueryParams<TaskView>,
) -> Result<Json<Vec<Task>>, Problem> {
    // The whole board for those who run tasks, one's own otherwise.
    let whose = if me.admin || me.tasks { 0 } else { me.id };
    Ok(Json(match view.period {
        None => st.store.tasks(whose).await?,
        Some(p) => {
            let period = DateRange::parse(&p).ok_or_else(|| {
                Problem::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "period",
                    "from..to, dates (YYYY-MM-DD or DD.MM.YYYY)",
                )
            })?;
            st.store.tasks_in(whose, &period).await?
        }
    }))
}

pub async fn create_task(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<TaskSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<Task>), Problem> {
    let spec = body(json)?;
    let (viewer, form) = viewer(&st, caller).await?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.save_task(&viewer, &form, None, &spec).await?),
    ))
}

pub async fn task(
    State(st): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Task>, Problem> {
    Ok(Json(st.store.task_for(&me, id).await?))
}

pub async fn update_task(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    json: Result<Json<TaskSpec>, JsonRejection>,
) -> Result<Json<Task>, Problem> {
    let spec = body(json)?;
    let (viewer, form) = viewer(&st, caller).await?;
    Ok(Json(
        st.store.save_task(&viewer, &form, Some(id), &spec).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    body: String,
}

pub async fn comment_task(
    State(st): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<i64>,
    json: Result<Json<NewComment>, JsonRejection>,
) -> Result<(StatusCode, Json<TaskComment>), Problem> {
    let c = body(json)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.comment_task(&me, id, &c.body).await?),
    ))
}

pub async fn task_comments(
    State(st): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<TaskComment>>, Problem> {
    Ok(Json(st.store.task_comments(&me, id).await?))
}

pub async fn task_history(
    State(st): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<TaskChange>>, Problem> {
    Ok(Json(st.store.task_history(&me, id).await?))
}

/// The counters beside the menu items: active events and open tasks of the caller.
pub async fn counters(
    State(st): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<Value>, Problem> {
    Ok(Json(serde_json::json!({
        "events": st.store.active_events(me.id).await?,
        "tasks": st.store.active_tasks(me.id).await?,
    })))
}

/// `POST /api/v1/partners/{id}/email`: a message about the card, noted in its history.
pub async fn send_email(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    json: Result<Json<Email>, JsonRejection>,
) -> Result<StatusCode, Problem> {
    let email = body(json)?;
    let viewer = st.store.viewer(caller.0).await?;
    st.store.send_email(&viewer, id, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

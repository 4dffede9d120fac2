//! The CRM's reports under /api/v1/reports: each answers `format=json` (the default, "Get
//! data"), `xlsx` or `csv` ("Download") and `html` (a page to print).

use crate::api::Caller;
use crate::crm::{download, query_pairs, table_query, viewer};
use crate::{AppState, Problem};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use kolokol_crm::exchange::{write_sheet, Format};
use kolokol_crm::reports::{Params, Report};
use kolokol_crm::values::plain;
use kolokol_engine::clock::now_ms;

/// The report as `format` asks: JSON, a file, or a printable page.
fn answer(report: Report, format: Option<&str>, file: &str) -> Result<Response, Problem> {
    match format.unwrap_or("json") {
        "json" => Ok(Json(report).into_response()),
        "html" => Ok(printable(&report)),
        other => {
            let format = Format::parse(other)?;
            let bytes = write_sheet(format, &report.columns, &report.rows)?;
            Ok(download(format, file, bytes))
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A bare page that prints as the report's table.
fn printable(report: &Report) -> Response {
    let title = escape(&report.title);
    let mut page = format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:12px sans-serif}}table{{border-collapse:collapse}}\
         th,td{{border:1px solid #999;padding:2px 6px;text-align:left}}\
         @media print{{button{{display:none}}}}</style></head>\
         <body><h1>{title}</h1><button onclick=\"print()\">Печать</button><table><thead><tr>"
    );
    for c in &report.columns {
        page.push_str(&format!("<th>{}</th>", escape(c)));
    }
    page.push_str("</tr></thead><tbody>");
    for row in &report.rows {
        page.push_str("<tr>");
        for v in row {
            page.push_str(&format!(
                "<td>{}</td>",
                escape(&plain(v).unwrap_or_default())
            ));
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table>");
    // Built from numbers by kolokol_crm::reports::charts, with its text escaped.
    for chart in &report.charts {
        page.push_str(chart);
    }
    if report.truncated {
        page.push_str("<p>Показаны первые строки: сузьте период или фильтры.</p>");
    }
    page.push_str("</body></html>");
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

/// `GET /api/v1/reports/partners?created=from..to&q=…&filter.<latin>=…&sort=…&format=…`
pub async fn partners(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let (q, params) = table_query(raw.as_deref(), &["format"])?;
    let (viewer, form) = viewer(&st, caller).await?;
    let report = st.store.partners_report(&viewer, &form, &q).await?;
    answer(report, params.get("format").map(String::as_str), "partners")
}

/// The reports whose parameters are their own (not the partner table's).
#[derive(Clone, Copy)]
enum Filtered {
    CardDynamics,
    Events,
    Tasks,
}

impl Filtered {
    fn params(self) -> &'static [&'static str] {
        match self {
            Filtered::CardDynamics => &["period", "user", "format"],
            Filtered::Events => &[
                "created",
                "due",
                "initiator",
                "assignee",
                "partner",
                "format",
            ],
            Filtered::Tasks => &[
                "q", "status", "priority", "assignee", "author", "due", "created", "format",
            ],
        }
    }

    fn file(self) -> &'static str {
        match self {
            Filtered::CardDynamics => "card-dynamics",
            Filtered::Events => "events",
            Filtered::Tasks => "tasks",
        }
    }
}

async fn filtered(
    st: AppState,
    caller: Caller,
    raw: Option<String>,
    which: Filtered,
) -> Result<Response, Problem> {
    let params = Params::new(query_pairs(raw.as_deref())?, which.params())?;
    let (viewer, form) = viewer(&st, caller).await?;
    let report = match which {
        Filtered::CardDynamics => st.store.card_dynamics(&viewer, &form, &params).await?,
        Filtered::Events => st.store.events_report(&viewer, &params).await?,
        Filtered::Tasks => st.store.tasks_report(&viewer, &params).await?,
    };
    answer(report, params.get("format"), which.file())
}

/// `GET /api/v1/reports/card-dynamics?period=from..to&user=<login>&format=…`
pub async fn card_dynamics(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    filtered(st, caller, raw, Filtered::CardDynamics).await
}

/// `GET /api/v1/reports/events?created=…&due=…&initiator=…&assignee=…&partner=…&format=…`
pub async fn events(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    filtered(st, caller, raw, Filtered::Events).await
}

/// `GET /api/v1/reports/tasks?q=…&status=…&priority=…&assignee=…&author=…&due=…&created=…&format=…`
pub async fn tasks(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    filtered(st, caller, raw, Filtered::Tasks).await
}

/// `GET /api/v1/reports/call-center?period=from..to&queue=a,b&format=…`: JSON is the
/// figures per day and in total; the files and the print page are a figure per row.
pub async fn call_center(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let params = Params::new(query_pairs(raw.as_deref())?, &["period", "queue", "format"])?;
    let (viewer, _) = viewer(&st, caller).await?;
    let (data, report) = st
        .store
        .call_center_report(&viewer, &params, now_ms())
        .await?;
    match params.get("format") {
        None | Some("json") => Ok(Json(data).into_response()),
        format => answer(report, format, "call-center"),
    }
}

/// `GET /api/v1/reports/kpi?period=from..to&view=by_day|summary&operator=a,b&queue=a,b&format=…`
pub async fn kpi(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let params = Params::new(
        query_pairs(raw.as_deref())?,
        &["period", "view", "operator", "queue", "format"],
    )?;
    let (viewer, _) = viewer(&st, caller).await?;
    let report = st.store.kpi_report(&viewer, &params, now_ms()).await?;
    answer(report, params.get("format"), "kpi")
}

/// `GET /api/v1/reports/calls?period=…&direction=…&status=…&number=…&operator=…&queue=…&after=…&limit=…&format=…`:
/// JSON is a page of calls (newest first, `next` continues it); files and the print page
/// hold every call of the filters (up to the report bound), numbered.
pub async fn calls(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    use kolokol_crm::reports::calls_report::CALLS_PARAMS;
    let params = Params::new(query_pairs(raw.as_deref())?, CALLS_PARAMS)?;
    let (viewer, _) = viewer(&st, caller).await?;
    match params.get("format") {
        None | Some("json") => {
            let page = st
                .store
                .calls_report(&viewer, &params, now_ms(), None)
                .await?;
            Ok(Json(page).into_response())
        }
        format => {
            let report = st.store.calls_sheet(&viewer, &params, now_ms()).await?;
            answer(report, format, "calls")
        }
    }
}

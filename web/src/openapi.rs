//! `GET /api/v1/openapi.json`: an OpenAPI 3.1 description of every route under /api/v1,
//! built from one table (a unit test checks it against the router, so a route cannot be
//! added undocumented). Bodies are described by the schemas below; every error is the
//! problem+json `Problem`.

use axum::Json;
use serde_json::{json, Map, Value};

/// One operation: method, path, tag, summary, request body schema, success status, and
/// the success body's schema (`[Name]`: an array of them).
type Op = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    Option<&'static str>,
);

const OPS: &[Op] = &[
    (
        "post",
        "/api/v1/session",
        "auth",
        "Log in: sets the session cookie (renewed at every login)",
        Some("Login"),
        200,
        Some("User"),
    ),
    (
        "get",
        "/api/v1/session",
        "auth",
        "Whether the session cookie is signed in (never 401)",
        None,
        200,
        Some("SessionState"),
    ),
    (
        "post",
        "/api/v1/session/logout",
        "auth",
        "Log out: ends the session",
        None,
        204,
        None,
    ),
    (
        "get",
        "/api/v1/me/softphone",
        "auth",
        "The caller's SIP identity for the browser softphone",
        None,
        200,
        Some("Softphone"),
    ),
    (
        "get",
        "/api/v1/me/counters",
        "auth",
        "Active events and open tasks of the caller",
        None,
        200,
        Some("Counters"),
    ),
    (
        "get",
        "/api/v1/me",
        "auth",
        "The signed-in user: login, name, extension, rights and settings",
        None,
        200,
        Some("Me"),
    ),
    (
        "patch",
        "/api/v1/me/settings",
        "auth",
        "Change one's settings: language ru|en, null for the browser's (absent: unchanged)",
        Some("SettingsChange"),
        200,
        Some("UserSettings"),
    ),
    (
        "put",
        "/api/v1/me/password",
        "auth",
        "Change one's web password: current (wrong: 403 naming current, throttled like logins), new (8+ characters, else 422 naming new); one's other sessions and tokens end, this one stays",
        Some("PasswordChange"),
        204,
        None,
    ),
    ("get", "/api/v1/users", "users", "Users (admin)", None, 200, Some("[User]")),
    (
        "post",
        "/api/v1/users",
        "users",
        "Create a user (admin)",
        Some("NewUser"),
        201,
        Some("Created"),
    ),
    (
        "patch",
        "/api/v1/users/{id}",
        "users",
        "Change a user: rights (admin), or one's own name and password",
        Some("UserChange"),
        200,
        Some("User"),
    ),
    (
        "delete",
        "/api/v1/users/{id}",
        "users",
        "Delete a user (admin, ?confirm=удалить)",
        None,
        204,
        None,
    ),
    (
        "put",
        "/api/v1/users/{login}/calls",
        "telephony",
        "A user's call settings (admin)",
        Some("Object"),
        200,
        Some("UserCalls"),
    ),
    (
        "get",
        "/api/v1/groups",
        "access",
        "Groups with members and field access (admin)",
        None,
        200,
        Some("[Group]"),
    ),
    (
        "post",
        "/api/v1/groups",
        "access",
        "Create a group (admin)",
        Some("GroupSpec"),
        201,
        Some("Group"),
    ),
    (
        "put",
        "/api/v1/groups/{id}",
        "access",
        "Replace a group (admin)",
        Some("GroupSpec"),
        200,
        Some("Group"),
    ),
    (
        "delete",
        "/api/v1/groups/{id}",
        "access",
        "Delete a group (admin, ?confirm=удалить)",
        None,
        204,
        None,
    ),
    (
        "get",
        "/api/v1/form",
        "form",
        "The card form: the fields the caller sees, and the lists",
        None,
        200,
        Some("Form"),
    ),
    (
        "post",
        "/api/v1/fields",
        "form",
        "Add a card field (admin)",
        Some("FieldSpec"),
        201,
        Some("Field"),
    ),
    (
        "put",
        "/api/v1/fields/{id}",
        "form",
        "Change a field (admin); a type change losing values needs confirm_loss",
        Some("FieldChange"),
        200,
        Some("Field"),
    ),
    (
        "delete",
        "/api/v1/fields/{id}",
        "form",
        "Delete a field and its values (admin, ?confirm=удалить)",
        None,
        204,
        None,
    ),
    (
        "post",
        "/api/v1/lists",
        "form",
        "Create a value list (admin)",
        Some("ListSpec"),
        201,
        Some("List"),
    ),
    (
        "put",
        "/api/v1/lists/{id}",
        "form",
        "Replace a list's name and items (admin)",
        Some("ListSpec"),
        200,
        Some("List"),
    ),
    (
        "delete",
        "/api/v1/lists/{id}",
        "form",
        "Delete a list no field uses (admin, ?confirm=удалить)",
        None,
        204,
        None,
    ),
    (
        "get",
        "/api/v1/lists/{id}/export",
        "form",
        "A list's items as ?format=xlsx|csv (admin)",
        None,
        200,
        None,
    ),
    (
        "get",
        "/api/v1/partners",
        "partners",
        "The partner table: ?q=, filter.<field>=, sort=[-]<field>, after=, limit=",
        None,
        200,
        Some("TablePage"),
    ),
    (
        "post",
        "/api/v1/partners",
        "partners",
        "Create a card (contacts right)",
        Some("PartnerValues"),
        201,
        Some("Partner"),
    ),
    (
        "get",
        "/api/v1/partners/{id}",
        "partners",
        "A card with the fields the caller sees",
        None,
        200,
        Some("Partner"),
    ),
    (
        "patch",
        "/api/v1/partners/{id}",
        "partners",
        "Change fields of a card",
        Some("PartnerValues"),
        200,
        Some("Partner"),
    ),
    (
        "delete",
        "/api/v1/partners/{id}",
        "partners",
        "Delete a card (contacts right, ?confirm=удалить)",
        None,
        204,
        None,
    ),
    (
        "get",
        "/api/v1/partners/{id}/history",
        "partners",
        "A card's history, without hidden fields",
        None,
        200,
        Some("[HistoryEntry]"),
    ),
    (
        "get",
        "/api/v1/partners/{id}/calls",
        "partners",
        "A card's calls with made / missed counts",
        None,
        200,
        Some("PartnerCalls"),
    ),
    (
        "post",
        "/api/v1/partners/{id}/email",
        "partners",
        "Send an e-mail about the card over SMTP",
        Some("Email"),
        204,
        None,
    ),
    (
        "get",
        "/api/v1/partners/{id}/files",
        "partners",
        "Files on a card",
        None,
        200,
        Some("[Attachment]"),
    ),
    (
        "post",
        "/api/v1/partners/{id}/files",
        "partners",
        "Attach a file: ?name=<original name>, the file as the body",
        Some("Binary"),
        201,
        Some("Attachment"),
    ),
    (
        "get",
        "/api/v1/partners/{id}/files/{file}",
        "partners",
        "Download a file",
        None,
        200,
        None,
    ),
    (
        "delete",
        "/api/v1/partners/{id}/files/{file}",
        "partners",
        "Remove a file (contacts right)",
        None,
        204,
        None,
    ),
    (
        "get",
        "/api/v1/partners/export",
        "partners",
        "The table as ?format=xlsx|csv with the table's parameters (reports right; at most 1,000,000 rows as CSV, streamed, or 100,000 as XLSX, else 422 naming filter)",
        None,
        200,
        None,
    ),
    (
        "get",
        "/api/v1/reports/partners",
        "reports",
        "Partners report: every visible field; created=from..to and the table's q, filter.<latin>, sort; format=json|xlsx|csv|html",
        None,
        200,
        Some("Report"),
    ),
    (
        "get",
        "/api/v1/reports/card-dynamics",
        "reports",
        "Changes to cards: period=from..to, user=<login>; format=json|xlsx|csv|html",
        None,
        200,
        Some("Report"),
    ),
    (
        "get",
        "/api/v1/reports/events",
        "reports",
        "Events: created=, due= (from..to), initiator=, assignee= (logins), partner=<id>; format=json|xlsx|csv|html",
        None,
        200,
        Some("Report"),
    ),
    (
        "get",
        "/api/v1/reports/tasks",
        "reports",
        "Tasks: q=, status=, priority= (comma-separated), assignee=, author=, due=, created=; format=json|xlsx|csv|html",
        None,
        200,
        Some("Report"),
    ),
    (
        "get",
        "/api/v1/reports/call-center",
        "reports",
        "Call-Center (reports right): period= (from..to, dates in crm.time_zone; default today), queue= (comma-separated); format=json (figures per day and total)|xlsx|csv|html",
        None,
        200,
        Some("CallCenter"),
    ),
    (
        "get",
        "/api/v1/reports/kpi",
        "reports",
        "KPI of operators: period=, view=by_day|summary, operator= and queue= (comma-separated); without the reports right only one's own rows; format=json|xlsx|csv|html",
        None,
        200,
        Some("Report"),
    ),
    (
        "get",
        "/api/v1/reports/calls",
        "reports",
        "Inbound / outbound detail, newest first: period=, direction=inbound|outbound|internal, status=answered|unanswered, number= (digits), operator= (login), queue=, after= (the previous page's next), limit= (1-500); without the reports right only one's own calls; format=json (a page)|xlsx|csv|html (every call, numbered)",
        None,
        200,
        Some("CallPage"),
    ),
    (
        "post",
        "/api/v1/partners/import",
        "partners",
        "Import CSV or XLSX (contacts right, checked before the body is read; at most 256 columns, 1,000,000 rows, 5,000,000 cells, an XLSX unpacking to 512 MiB): ?format=, dry_run=, mapping={column: field}",
        Some("Binary"),
        200,
        Some("ImportReport"),
    ),
    (
        "get",
        "/api/v1/partners/duplicates",
        "partners",
        "Partners sharing a phone, e-mail or ?field=",
        None,
        200,
        Some("[DuplicateGroup]"),
    ),
    (
        "post",
        "/api/v1/partners/merge",
        "partners",
        "Merge partners into a survivor (contacts right)",
        Some("Merge"),
        200,
        Some("Partner"),
    ),
    (
        "get",
        "/api/v1/events",
        "calendar",
        "Events between ?from= and ?to= (RFC 3339); admins may ask ?user=",
        None,
        200,
        Some("[CalendarEvent]"),
    ),
    (
        "post",
        "/api/v1/events",
        "calendar",
        "Create an event (reminders arrive on /api/v1/live)",
        Some("EventSpec"),
        201,
        Some("CalendarEvent"),
    ),
    (
        "get",
        "/api/v1/events/{id}",
        "calendar",
        "An event with its follow-ups",
        None,
        200,
        Some("CalendarEvent"),
    ),
    (
        "post",
        "/api/v1/events/{id}/complete",
        "calendar",
        "Complete an event (the time is kept)",
        None,
        200,
        Some("CalendarEvent"),
    ),
    (
        "get",
        "/api/v1/tasks",
        "tasks",
        "The task board, or with ?period=from..to the tasks on the calendar in those days",
        None,
        200,
        Some("[Task]"),
    ),
    (
        "post",
        "/api/v1/tasks",
        "tasks",
        "Create a task (tasks right)",
        Some("TaskSpec"),
        201,
        Some("Task"),
    ),
    ("get", "/api/v1/tasks/{id}", "tasks", "A task", None, 200, Some("Task")),
    (
        "patch",
        "/api/v1/tasks/{id}",
        "tasks",
        "Change or move a task; the last two columns need hours_spent",
        Some("TaskSpec"),
        200,
        Some("Task"),
    ),
    (
        "get",
        "/api/v1/tasks/{id}/comments",
        "tasks",
        "A task's comments",
        None,
        200,
        Some("[TaskComment]"),
    ),
    (
        "post",
        "/api/v1/tasks/{id}/comments",
        "tasks",
        "Comment on a task",
        Some("NewComment"),
        201,
        Some("TaskComment"),
    ),
    (
        "get",
        "/api/v1/tasks/{id}/history",
        "tasks",
        "Every change of a task",
        None,
        200,
        Some("[TaskChange]"),
    ),
    (
        "get",
        "/api/v1/tasks/{id}/files",
        "tasks",
        "Files on a task",
        None,
        200,
        Some("[Attachment]"),
    ),
    (
        "post",
        "/api/v1/tasks/{id}/files",
        "tasks",
        "Attach a file to a task: ?name=<original name>, the file as the body",
        Some("Binary"),
        201,
        Some("Attachment"),
    ),
    (
        "get",
        "/api/v1/tasks/{id}/files/{file}",
        "tasks",
        "Download a task's file",
        None,
        200,
        None,
    ),
    (
        "delete",
        "/api/v1/tasks/{id}/files/{file}",
        "tasks",
        "Remove a file from a task",
        None,
        204,
        None,
    ),
    (
        "get",
        "/api/v1/registrations",
        "telephony",
        "Registered SIP contacts",
        None,
        200,
        None,
    ),
    (
        "get",
        "/api/v1/trunks",
        "telephony",
        "Trunks (admin)",
        None,
        200,
        None,
    ),
    (
        "post",
        "/api/v1/trunks",
        "telephony",
        "Add a trunk (admin)",
        Some("Object"),
        201,
        Some("TrunkRow"),
    ),
    (
        "get",
        "/api/v1/numbers",
        "telephony",
        "Inbound numbers (admin)",
        None,
        200,
        Some("[NewNumber]"),
    ),
    (
        "post",
        "/api/v1/numbers",
        "telephony",
        "Route a number to a user or queue (admin)",
        Some("Object"),
        201,
        Some("NewNumber"),
    ),
    (
        "get",
        "/api/v1/calls",
        "calls",
        "Recent calls (all for admins, one's own otherwise)",
        None,
        200,
        None,
    ),
    (
        "post",
        "/api/v1/calls",
        "calls",
        "Click-to-call {to}: rings the caller's own registered devices first (their INVITE carries X-Kolokol-Call-Id: <call_id> and X-Kolokol-Click-To-Call: <number>, From shows the number; a softphone may answer it by itself), and when one answers, dials the number through the caller's trunk: an outbound call of theirs (events, recording, partner card, reports). 202 with the call id; 409 no device registered; 422 naming to (not a phone number, an extension or a number of ours, or no trunk for it); 429 while another click-to-call of theirs rings; a device that refuses or does not answer within calls.ring_timeout_s ends the call with that cause",
        Some("ClickToCall"),
        202,
        Some("Placed"),
    ),
    (
        "get",
        "/api/v1/calls/{id}/events",
        "calls",
        "Every event of a call",
        None,
        200,
        None,
    ),
    (
        "get",
        "/api/v1/calls/{id}/partner",
        "calls",
        "The card of the call's outside party (made for an unknown number as the call is offered), to whoever placed, took or was offered the call (a queue operator while it rings: the id is the INVITE's X-Kolokol-Call-Id)",
        None,
        200,
        Some("Partner"),
    ),
    (
        "get",
        "/api/v1/recordings/{id}",
        "calls",
        "A call's recording (WAV, byte ranges)",
        None,
        200,
        None,
    ),
    (
        "get",
        "/api/v1/live",
        "live",
        "WebSocket: call, queue and operator events, reminders, import progress",
        None,
        101,
        None,
    ),
    ("get", "/api/v1/queues", "queues", "Queues", None, 200, None),
    (
        "get",
        "/api/v1/queues/stats",
        "queues",
        "Today's live figures per queue (Call-Center definitions, callers waiting now) and per operator (KPI; all with the reports right, else one's own)",
        None,
        200,
        Some("QueueStats"),
    ),
    (
        "post",
        "/api/v1/queues",
        "queues",
        "Create a queue (admin)",
        Some("Object"),
        201,
        None,
    ),
    (
        "put",
        "/api/v1/queues/{name}",
        "queues",
        "Replace a queue (admin)",
        Some("Object"),
        200,
        None,
    ),
    (
        "delete",
        "/api/v1/queues/{name}",
        "queues",
        "Delete an unused queue (admin)",
        None,
        204,
        None,
    ),
    (
        "get",
        "/api/v1/queue-events",
        "queues",
        "Queue and operator events",
        None,
        200,
        None,
    ),
    (
        "get",
        "/api/v1/pause-reasons",
        "queues",
        "Pause reasons",
        None,
        200,
        Some("[Text]"),
    ),
    (
        "post",
        "/api/v1/pause-reasons",
        "queues",
        "Add a pause reason (admin)",
        Some("Object"),
        201,
        None,
    ),
    (
        "get",
        "/api/v1/operators",
        "queues",
        "Operators with state and today's counters",
        None,
        200,
        Some("[OperatorView]"),
    ),
    (
        "post",
        "/api/v1/operators/{id}/login",
        "queues",
        "Operator in work",
        None,
        204,
        None,
    ),
    (
        "post",
        "/api/v1/operators/{id}/logout",
        "queues",
        "Operator's end of day",
        None,
        204,
        None,
    ),
    (
        "post",
        "/api/v1/operators/{id}/pause",
        "queues",
        "Operator paused with a reason",
        Some("PauseBody"),
        204,
        None,
    ),
    (
        "post",
        "/api/v1/operators/{id}/resume",
        "queues",
        "Operator back from pause",
        None,
        204,
        None,
    ),
    (
        "get",
        "/api/v1/openapi.json",
        "meta",
        "This document",
        None,
        200,
        None,
    ),
];

/// Every body's schema: derived from the Rust types the handlers read and write (so the
/// document cannot drift from them), plus the few that have no type of their own.
fn schemas() -> Map<String, Value> {
    use kolokol_crm::{access, calendar, duplicates, exchange, files, form, mail};
    use kolokol_crm::{partner_calls, partners, reports, table, tasks, telephony, users};
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    macro_rules! derived {
        ($($t:ty),* $(,)?) => { $( generator.subschema_for::<$t>(); )* };
    }
    derived!(
        crate::api::Login,
        crate::api::SessionState,
        crate::api::Created,
        crate::softphone::Softphone,
        crate::me::Me,
        crate::click_to_call::ClickToCall,
        crate::click_to_call::Placed,
        crate::me::PasswordChange,
        kolokol_crm::settings::UserSettings,
        kolokol_crm::settings::SettingsChange,
        crate::queues::OperatorView,
        crate::queues::PauseBody,
        crate::crm::PartnerValues,
        crate::crm::ListSpec,
        crate::crm::NewComment,
        crate::crm::FieldChange,
        users::User,
        users::NewUser,
        users::UserChange,
        access::Group,
        access::GroupSpec,
        form::Form,
        form::Field,
        form::FieldSpec,
        form::List,
        partners::Partner,
        partners::HistoryEntry,
        table::TablePage,
        files::Attachment,
        partner_calls::PartnerCalls,
        mail::Email,
        reports::Report,
        reports::contact_store::CallCenter,
        crate::queues::QueueStats,
        reports::calls_report::CallPage,
        exchange::ImportReport,
        duplicates::DuplicateGroup,
        duplicates::Merge,
        calendar::CalendarEvent,
        calendar::EventSpec,
        tasks::Task,
        tasks::TaskSpec,
        tasks::TaskComment,
        tasks::TaskChange,
        telephony::UserCalls,
        telephony::TrunkRow,
        telephony::NewNumber,
    );
    let mut all = generator.take_definitions(true);
    let by_hand = json!({
        "Text": {"type": "string"},
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details; `field` names the field at fault",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "field": {"type": "string"}, "values_lost": {"type": "integer"}
            },
            "required": ["type", "title", "status", "detail"]
        },
        "Object": {"type": "object"},
        "Binary": {"type": "string", "contentMediaType": "application/octet-stream"},
        "Counters": {"type": "object", "properties": {"events": {"type": "integer"}, "tasks": {"type": "integer"}},
            "required": ["events", "tasks"]}
    });
    if let Value::Object(m) = by_hand {
        all.extend(m);
    }
    all
}

/// Query parameters read into a type: its properties, as the handler's serde sees them.
fn query_of<T: schemars::JsonSchema>() -> Vec<Value> {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    let schema = schema.as_value();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| {
                    let mut param = json!({
                        "name": name, "in": "query", "required": required.contains(&name.as_str()),
                        "schema": p,
                    });
                    if let Some(d) = p.get("description") {
                        param["description"] = d.clone();
                    }
                    param
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Query parameters parsed by hand: (name, JSON type, description).
fn query_listed(params: &[(&str, &str, &str)]) -> Vec<Value> {
    params
        .iter()
        .map(|(name, kind, about)| {
            json!({"name": name, "in": "query", "required": false, "schema": {"type": kind}, "description": about})
        })
        .collect()
}

/// The partner table's parameters (its `filter.<latin>=…` are named per field, so they are
/// described in the summaries).
const TABLE_QUERY: &[(&str, &str, &str)] = &[
    ("q", "string", "search term, inside any visible column"),
    (
        "sort",
        "string",
        "a field's latin name, `-` first for descending",
    ),
    ("after", "string", "the previous page's `next`"),
    ("limit", "integer", "rows per page, 1-500 (50)"),
    ("created", "string", "cards created from..to (dates)"),
];

const FORMAT: (&str, &str, &str) = ("format", "string", "json (default), xlsx, csv or html");

/// The query parameters of an operation.
fn query_params(method: &str, path: &str) -> Vec<Value> {
    use crate::{calls, crm, queues};
    let with_format = |own: &[(&str, &str, &str)]| {
        let mut all = own.to_vec();
        all.push(FORMAT);
        query_listed(&all)
    };
    match (method, path) {
        ("delete", p)
            if ["users", "groups", "fields", "lists", "partners"]
                .iter()
                .any(|what| p == format!("/api/v1/{what}/{{id}}")) =>
        {
            query_of::<crm::Confirm>()
        }
        ("get", "/api/v1/partners") => query_listed(TABLE_QUERY),
        ("get", "/api/v1/partners/export") => {
            let mut all = TABLE_QUERY.to_vec();
            all.push(("format", "string", "xlsx (default) or csv"));
            query_listed(&all)
        }
        ("get", "/api/v1/lists/{id}/export") => {
            query_listed(&[("format", "string", "xlsx (default) or csv")])
        }
        ("get", "/api/v1/reports/partners") => with_format(TABLE_QUERY),
        ("get", "/api/v1/reports/card-dynamics") => with_format(&[
            ("period", "string", "from..to (dates)"),
            ("user", "string", "changes by this login only"),
        ]),
        ("get", "/api/v1/reports/events") => with_format(&[
            ("created", "string", "from..to (dates)"),
            ("due", "string", "from..to (dates)"),
            ("initiator", "string", "login"),
            ("assignee", "string", "login"),
            ("partner", "integer", "partner id"),
        ]),
        ("get", "/api/v1/reports/call-center") => with_format(&[
            ("period", "string", "from..to (dates)"),
            ("queue", "string", "comma-separated queue names"),
        ]),
        ("get", "/api/v1/reports/kpi") => with_format(&[
            ("period", "string", "from..to (dates)"),
            ("view", "string", "by_day or summary"),
            ("operator", "string", "comma-separated logins"),
            ("queue", "string", "comma-separated queue names"),
        ]),
        ("get", "/api/v1/reports/calls") => with_format(&[
            ("period", "string", "from..to (dates)"),
            ("direction", "string", "inbound, outbound or internal"),
            ("status", "string", "answered or unanswered"),
            (
                "number",
                "string",
                "digits inside any of the call's numbers",
            ),
            ("operator", "string", "login"),
            ("queue", "string", "queue name"),
            ("after", "string", "the next of the previous page"),
            ("limit", "integer", "1 to 500 (default 50)"),
        ]),
        ("get", "/api/v1/reports/tasks") => with_format(&[
            ("q", "string", "inside the title or description"),
            ("status", "string", "comma-separated columns"),
            ("priority", "string", "comma-separated: low, normal, high"),
            ("assignee", "string", "login"),
            ("author", "string", "login"),
            ("due", "string", "from..to (dates)"),
            ("created", "string", "from..to (dates)"),
        ]),
        ("get", "/api/v1/partners/duplicates") => query_of::<crm::DuplicateQuery>(),
        ("post", "/api/v1/partners/{id}/files" | "/api/v1/tasks/{id}/files") => {
            query_of::<crm::FileName>()
        }
        ("post", "/api/v1/partners/import") => query_of::<crm::ImportParams>(),
        ("get", "/api/v1/events") => query_of::<crm::EventRange>(),
        ("get", "/api/v1/tasks") => query_of::<crm::TaskView>(),
        ("get", "/api/v1/calls") => query_of::<calls::CallQuery>(),
        ("get", "/api/v1/queue-events") => query_of::<queues::EventFilter>(),
        _ => Vec::new(),
    }
}

/// A reference to schema `name`; `[name]` is an array of them.
fn schema_ref(name: &str) -> Value {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(item) => json!({"type": "array", "items": schema_ref(item)}),
        None => json!({"$ref": format!("#/components/schemas/{name}")}),
    }
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, tag, summary, body, ok, answer) in OPS {
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                // Call ids (calls and their recordings) and operators (logins) are text,
                // like logins and names.
                let text_id = [
                    "/api/v1/calls/",
                    "/api/v1/recordings/",
                    "/api/v1/operators/",
                ]
                .iter()
                .any(|p| path.starts_with(p));
                let kind = if ["login", "name"].contains(&name) || text_id {
                    "string"
                } else {
                    "integer"
                };
                json!({"name": name, "in": "path", "required": true, "schema": {"type": kind}})
            })
            .collect();
        params.extend(query_params(method, path));
        let mut op = json!({
            "tags": [tag],
            "summary": summary,
            "parameters": params,
            "responses": {
                ok.to_string(): match answer {
                    Some(name) => json!({"description": "done", "content": {"application/json": {"schema": schema_ref(name)}}}),
                    None => json!({"description": "done"}),
                },
                "default": {
                    "description": "an error",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                }
            }
        });
        if let Some(schema) = body {
            let media = if *schema == "Binary" {
                "application/octet-stream"
            } else {
                "application/json"
            };
            op["requestBody"] = json!({
                "required": true,
                "content": {media: {"schema": schema_ref(schema)}}
            });
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kolokol",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Contact center: telephony, queues and the CRM. Authenticate with `Authorization: Bearer <token>` (kolokol token create) or the session cookie from POST /api/v1/session."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::api::SESSION_COOKIE}
            }
        }
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// (method, path) of every /api/v1 route the router registers, read from its source.
    fn routed() -> BTreeSet<(String, String)> {
        let src = include_str!("lib.rs");
        let mut out = BTreeSet::new();
        for block in src.split(".route(").skip(1) {
            let path = block.split('"').nth(1).unwrap_or_default();
            if !path.starts_with("/api/v1") {
                continue;
            }
            // The route's handlers end where the next route begins.
            for method in ["get", "post", "put", "patch", "delete"] {
                let handler = format!("{method}(");
                // `get(crm::form)`: the method alone, its argument a handler's path.
                let routed = block.match_indices(&handler).any(|(i, _)| {
                    let before = block[..i].chars().last();
                    let arg = block[i + handler.len()..]
                        .split(')')
                        .next()
                        .unwrap_or_default();
                    !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && arg.contains("::")
                });
                if routed {
                    out.insert((method.to_string(), path.to_string()));
                }
            }
        }
        out
    }

    /// The web app's typed client is generated from `ui/openapi.json` in the build; the
    /// copy must be this document, so an API change reaches the UI's type check.
    /// `KOLOKOL_UI_SKIP=1 KOLOKOL_BLESS=1 cargo test -p kolokol-web --lib openapi` rewrites
    /// it (without building the UI, which may not type-check against the new API yet).
    #[test]
    fn the_web_apps_copy_of_the_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ui/openapi.json");
        let current = serde_json::to_string_pretty(&document()).expect("json") + "\n";
        if std::env::var_os("KOLOKOL_BLESS").is_some() {
            std::fs::write(path, &current).expect("write ui/openapi.json");
        }
        let copy = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            copy == current,
            "web/ui/openapi.json is stale: run KOLOKOL_UI_SKIP=1 KOLOKOL_BLESS=1 cargo test -p kolokol-web --lib openapi"
        );
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let documented: BTreeSet<(String, String)> = OPS
            .iter()
            .map(|(m, p, ..)| (m.to_string(), p.to_string()))
            .collect();
        let routed = routed();
        assert!(
            routed.len() > 60,
            "the router source was not read: {routed:?}"
        );
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routes without documentation: {missing:?}"
        );
        assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    }

    #[test]
    fn every_reference_resolves_and_bodies_follow_the_types() {
        fn refs<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 100, "{}", found.len());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").expect(r);
            assert!(schemas.contains_key(name), "no schema {name}");
        }
        assert_eq!(doc["openapi"], "3.1.0");
        let card = &doc["paths"]["/api/v1/partners/{id}"];
        assert!(card["patch"]["requestBody"].is_object());
        assert_eq!(
            card["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Partner"
        );
        // Derived from the types: a task's fields, the field kinds' names as serde writes them.
        let task = &schemas["Task"]["properties"];
        for p in ["status", "hours_spent", "partners", "due_on"] {
            assert!(task.get(p).is_some(), "Task lacks {p}: {task}");
        }
        // Query parameters: from the handlers' types, or listed where parsed by hand.
        let query = |method: &str, path: &str| -> Vec<(String, bool)> {
            doc["paths"][path][method]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query")
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_string(),
                        p["required"].as_bool().unwrap(),
                    )
                })
                .collect()
        };
        let events = query("get", "/api/v1/events");
        assert!(events.contains(&("from".into(), true)), "{events:?}");
        assert!(events.contains(&("user".into(), false)), "{events:?}");
        assert!(query("get", "/api/v1/partners").contains(&("q".into(), false)));
        assert!(query("delete", "/api/v1/fields/{id}").contains(&("confirm".into(), false)));
        assert!(query("post", "/api/v1/tasks/{id}/files").contains(&("name".into(), false)));
        assert!(query("get", "/api/v1/queue-events").contains(&("after_id".into(), false)));
        assert!(query("get", "/api/v1/reports/tasks").contains(&("format".into(), false)));
        assert!(query("get", "/api/v1/calls").contains(&("limit".into(), false)));
        let kinds = schemas["FieldKind"].to_string();
        assert!(
            kinds.contains("multi_select") && kinds.contains("large_text"),
            "{kinds}"
        );
    }
}

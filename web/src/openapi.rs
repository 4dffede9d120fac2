//! `GET /api/v1/openapi.json`: an OpenAPI 3.1 description of every route under /api/v1,
//! built from one table (a unit test checks it against the router, so a route cannot be
//! added undocumented). Bodies are described by the schemas below; every error is the
//! problem+json `Problem`.

use axum::Json;
use serde_json::{json, Map, Value};

/// One operation: method, path, tag, summary, request body schema, success status.
type Op = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
);

const OPS: &[Op] = &[
    (
        "post",
        "/api/v1/session",
        "auth",
        "Log in: sets the session cookie (renewed at every login)",
        Some("Login"),
        200,
    ),
    (
        "post",
        "/api/v1/session/logout",
        "auth",
        "Log out: ends the session",
        None,
        204,
    ),
    (
        "get",
        "/api/v1/me/softphone",
        "auth",
        "The caller's SIP identity for the browser softphone",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/me/counters",
        "auth",
        "Active events and open tasks of the caller",
        None,
        200,
    ),
    ("get", "/api/v1/users", "users", "Users (admin)", None, 200),
    (
        "post",
        "/api/v1/users",
        "users",
        "Create a user (admin)",
        Some("NewUser"),
        201,
    ),
    (
        "patch",
        "/api/v1/users/{id}",
        "users",
        "Change a user: rights (admin), or one's own name and password",
        Some("UserChange"),
        200,
    ),
    (
        "delete",
        "/api/v1/users/{id}",
        "users",
        "Delete a user (admin, ?confirm=удалить)",
        None,
        204,
    ),
    (
        "put",
        "/api/v1/users/{login}/calls",
        "telephony",
        "A user's call settings (admin)",
        Some("Object"),
        200,
    ),
    (
        "get",
        "/api/v1/groups",
        "access",
        "Groups with members and field access (admin)",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/groups",
        "access",
        "Create a group (admin)",
        Some("GroupSpec"),
        201,
    ),
    (
        "put",
        "/api/v1/groups/{id}",
        "access",
        "Replace a group (admin)",
        Some("GroupSpec"),
        200,
    ),
    (
        "delete",
        "/api/v1/groups/{id}",
        "access",
        "Delete a group (admin, ?confirm=удалить)",
        None,
        204,
    ),
    (
        "get",
        "/api/v1/form",
        "form",
        "The card form: the fields the caller sees, and the lists",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/fields",
        "form",
        "Add a card field (admin)",
        Some("FieldSpec"),
        201,
    ),
    (
        "put",
        "/api/v1/fields/{id}",
        "form",
        "Change a field (admin); a type change losing values needs confirm_loss",
        Some("FieldSpec"),
        200,
    ),
    (
        "delete",
        "/api/v1/fields/{id}",
        "form",
        "Delete a field and its values (admin, ?confirm=удалить)",
        None,
        204,
    ),
    (
        "post",
        "/api/v1/lists",
        "form",
        "Create a value list (admin)",
        Some("ListSpec"),
        201,
    ),
    (
        "put",
        "/api/v1/lists/{id}",
        "form",
        "Replace a list's name and items (admin)",
        Some("ListSpec"),
        200,
    ),
    (
        "delete",
        "/api/v1/lists/{id}",
        "form",
        "Delete a list no field uses (admin, ?confirm=удалить)",
        None,
        204,
    ),
    (
        "get",
        "/api/v1/lists/{id}/export",
        "form",
        "A list's items as ?format=xlsx|csv",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/partners",
        "partners",
        "The partner table: ?q=, filter.<field>=, sort=[-]<field>, after=, limit=",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/partners",
        "partners",
        "Create a card (contacts right)",
        Some("PartnerValues"),
        201,
    ),
    (
        "get",
        "/api/v1/partners/{id}",
        "partners",
        "A card with the fields the caller sees",
        None,
        200,
    ),
    (
        "patch",
        "/api/v1/partners/{id}",
        "partners",
        "Change fields of a card",
        Some("PartnerValues"),
        200,
    ),
    (
        "delete",
        "/api/v1/partners/{id}",
        "partners",
        "Delete a card (contacts right, ?confirm=удалить)",
        None,
        204,
    ),
    (
        "get",
        "/api/v1/partners/{id}/history",
        "partners",
        "A card's history, without hidden fields",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/partners/{id}/calls",
        "partners",
        "A card's calls with made / missed counts",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/partners/{id}/email",
        "partners",
        "Send an e-mail about the card over SMTP",
        Some("Email"),
        204,
    ),
    (
        "get",
        "/api/v1/partners/{id}/files",
        "partners",
        "Files on a card",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/partners/{id}/files",
        "partners",
        "Attach a file: ?name=<original name>, the file as the body",
        Some("Binary"),
        201,
    ),
    (
        "get",
        "/api/v1/partners/{id}/files/{file}",
        "partners",
        "Download a file",
        None,
        200,
    ),
    (
        "delete",
        "/api/v1/partners/{id}/files/{file}",
        "partners",
        "Remove a file (contacts right)",
        None,
        204,
    ),
    (
        "get",
        "/api/v1/partners/export",
        "partners",
        "The table as ?format=xlsx|csv with the table's parameters",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/reports/partners",
        "reports",
        "Partners report: every visible field; created=from..to and the table's q, filter.<latin>, sort; format=json|xlsx|csv|html",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/reports/card-dynamics",
        "reports",
        "Changes to cards: period=from..to, user=<login>; format=json|xlsx|csv|html",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/reports/events",
        "reports",
        "Events: created=, due= (from..to), initiator=, assignee= (logins), partner=<id>; format=json|xlsx|csv|html",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/reports/tasks",
        "reports",
        "Tasks: q=, status=, priority= (comma-separated), assignee=, author=, due=, created=; format=json|xlsx|csv|html",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/partners/import",
        "partners",
        "Import CSV or XLSX: ?format=, dry_run=, mapping={column: field}",
        Some("Binary"),
        200,
    ),
    (
        "get",
        "/api/v1/partners/duplicates",
        "partners",
        "Partners sharing a phone, e-mail or ?field=",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/partners/merge",
        "partners",
        "Merge partners into a survivor (contacts right)",
        Some("Merge"),
        200,
    ),
    (
        "get",
        "/api/v1/events",
        "calendar",
        "Events between ?from= and ?to= (RFC 3339); admins may ask ?user=",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/events",
        "calendar",
        "Create an event (reminders arrive on /api/v1/live)",
        Some("EventSpec"),
        201,
    ),
    (
        "get",
        "/api/v1/events/{id}",
        "calendar",
        "An event with its follow-ups",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/events/{id}/complete",
        "calendar",
        "Complete an event (the time is kept)",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/tasks",
        "tasks",
        "The task board, or with ?period=from..to the tasks on the calendar in those days",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/tasks",
        "tasks",
        "Create a task (tasks right)",
        Some("TaskSpec"),
        201,
    ),
    ("get", "/api/v1/tasks/{id}", "tasks", "A task", None, 200),
    (
        "patch",
        "/api/v1/tasks/{id}",
        "tasks",
        "Change or move a task; the last two columns need hours_spent",
        Some("TaskSpec"),
        200,
    ),
    (
        "get",
        "/api/v1/tasks/{id}/comments",
        "tasks",
        "A task's comments",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/tasks/{id}/comments",
        "tasks",
        "Comment on a task",
        Some("Comment"),
        201,
    ),
    (
        "get",
        "/api/v1/tasks/{id}/history",
        "tasks",
        "Every change of a task",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/tasks/{id}/files",
        "tasks",
        "Files on a task",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/tasks/{id}/files",
        "tasks",
        "Attach a file to a task: ?name=<original name>, the file as the body",
        Some("Binary"),
        201,
    ),
    (
        "get",
        "/api/v1/tasks/{id}/files/{file}",
        "tasks",
        "Download a task's file",
        None,
        200,
    ),
    (
        "delete",
        "/api/v1/tasks/{id}/files/{file}",
        "tasks",
        "Remove a file from a task",
        None,
        204,
    ),
    (
        "get",
        "/api/v1/registrations",
        "telephony",
        "Registered SIP contacts",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/trunks",
        "telephony",
        "Trunks (admin)",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/trunks",
        "telephony",
        "Add a trunk (admin)",
        Some("Object"),
        201,
    ),
    (
        "get",
        "/api/v1/numbers",
        "telephony",
        "Inbound numbers (admin)",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/numbers",
        "telephony",
        "Route a number to a user or queue (admin)",
        Some("Object"),
        201,
    ),
    (
        "get",
        "/api/v1/calls",
        "calls",
        "Recent calls (all for admins, one's own otherwise)",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/calls/{id}/events",
        "calls",
        "Every event of a call",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/recordings/{id}",
        "calls",
        "A call's recording (WAV, byte ranges)",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/live",
        "live",
        "WebSocket: call, queue and operator events, reminders, import progress",
        None,
        101,
    ),
    ("get", "/api/v1/queues", "queues", "Queues", None, 200),
    (
        "post",
        "/api/v1/queues",
        "queues",
        "Create a queue (admin)",
        Some("Object"),
        201,
    ),
    (
        "put",
        "/api/v1/queues/{name}",
        "queues",
        "Replace a queue (admin)",
        Some("Object"),
        200,
    ),
    (
        "delete",
        "/api/v1/queues/{name}",
        "queues",
        "Delete an unused queue (admin)",
        None,
        204,
    ),
    (
        "get",
        "/api/v1/queue-events",
        "queues",
        "Queue and operator events",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/pause-reasons",
        "queues",
        "Pause reasons",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/pause-reasons",
        "queues",
        "Add a pause reason (admin)",
        Some("Object"),
        201,
    ),
    (
        "get",
        "/api/v1/operators",
        "queues",
        "Operators with state and today's counters",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/operators/{id}/login",
        "queues",
        "Operator in work",
        None,
        204,
    ),
    (
        "post",
        "/api/v1/operators/{id}/logout",
        "queues",
        "Operator's end of day",
        None,
        204,
    ),
    (
        "post",
        "/api/v1/operators/{id}/pause",
        "queues",
        "Operator paused with a reason",
        Some("Object"),
        204,
    ),
    (
        "post",
        "/api/v1/operators/{id}/resume",
        "queues",
        "Operator back from pause",
        None,
        204,
    ),
    (
        "get",
        "/api/v1/openapi.json",
        "meta",
        "This document",
        None,
        200,
    ),
];

fn schemas() -> Value {
    let strings =
        |v: &[&str]| json!({"type": "array", "items": {"type": "string"}, "examples": [v]});
    json!({
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
        "Login": {"type": "object", "properties": {"login": {"type": "string"}, "password": {"type": "string"}}, "required": ["login", "password"]},
        "NewUser": {"type": "object", "required": ["login", "name"], "properties": {
            "login": {"type": "string"}, "name": {"type": "string"}, "extension": {"type": "string"},
            "sip_password": {"type": "string"}, "password": {"type": "string"}, "admin": {"type": "boolean"},
            "contacts": {"type": "boolean"}, "tasks": {"type": "boolean"}, "reports": {"type": "boolean"}}},
        "UserChange": {"type": "object", "properties": {
            "name": {"type": "string"}, "password": {"type": "string"}, "active": {"type": "boolean"}, "admin": {"type": "boolean"},
            "contacts": {"type": "boolean"}, "tasks": {"type": "boolean"}, "reports": {"type": "boolean"}}},
        "GroupSpec": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "members": strings(&["ivanova"]),
            "access": {"type": "object", "additionalProperties": {"enum": ["hidden", "view", "edit"]}}}},
        "FieldSpec": {"type": "object", "required": ["name", "latin", "kind"], "properties": {
            "name": {"type": "string"}, "latin": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
            "section": {"type": "string"},
            "kind": {"enum": ["text", "large_text", "number", "date", "list", "dropdown", "multi_select", "checkboxes", "phone", "email"]},
            "list_id": {"type": "integer"}, "position": {"type": "integer"}, "shown": {"type": "boolean"},
            "placeholder": {"type": "string"}, "side": {"enum": ["left", "right"]}, "in_table": {"type": "boolean"},
            "required": {"type": "boolean"}, "confirm_loss": {"type": "boolean"}}},
        "ListSpec": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "id": {"type": "integer"}, "name": {"type": "string"}, "position": {"type": "integer"},
                "hidden_by_default": {"type": "boolean"}}}}}},
        "PartnerValues": {"type": "object", "required": ["values"], "properties": {
            "values": {"type": "object", "description": "field latin name → value (lists by item name, multi-selects as arrays)"}}},
        "Merge": {"type": "object", "required": ["survivor", "merged"], "properties": {
            "survivor": {"type": "integer"}, "merged": {"type": "array", "items": {"type": "integer"}},
            "values": {"type": "object"}}},
        "Email": {"type": "object", "required": ["subject", "to", "body"], "properties": {
            "subject": {"type": "string"}, "to": strings(&["Иван <ivan@example.ru>"]), "cc": strings(&[]), "bcc": strings(&[]),
            "body": {"type": "string"}, "attachments": {"type": "array", "items": {"type": "integer"}}}},
        "EventSpec": {"type": "object", "required": ["description", "at"], "properties": {
            "description": {"type": "string"}, "kind": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
            "remind_min": {"type": "integer"}, "partner_id": {"type": "integer"}, "assignee": {"type": "string"},
            "follows": {"type": "integer"}}},
        "TaskSpec": {"type": "object", "properties": {
            "title": {"type": "string"}, "description": {"type": "string"},
            "status": {"enum": ["todo", "question", "in_progress", "closed_by_assignee", "done"]},
            "priority": {"enum": ["low", "normal", "high"]}, "assignee": {"type": "string"},
            "starts_on": {"type": "string", "format": "date"}, "due_on": {"type": "string", "format": "date"},
            "hours_spent": {"type": "number"}, "partners": {"type": "array", "items": {"type": "integer"}},
            "partner_filter": {"type": "string", "description": "the table's query string, e.g. filter.city=Казань"}}},
        "Comment": {"type": "object", "required": ["body"], "properties": {"body": {"type": "string"}}}
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, tag, summary, body, ok) in OPS {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                let kind = if ["login", "name"].contains(&name) {
                    "string"
                } else {
                    "integer"
                };
                json!({"name": name, "in": "path", "required": true, "schema": {"type": kind}})
            })
            .collect();
        let mut op = json!({
            "tags": [tag],
            "summary": summary,
            "parameters": params,
            "responses": {
                ok.to_string(): {"description": "done"},
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
                "content": {media: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
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
    fn bodies_refer_to_schemas_that_exist() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (_, _, _, _, body, _) in OPS {
            if let Some(b) = body {
                assert!(schemas.contains_key(*b), "no schema {b}");
            }
        }
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/api/v1/partners/{id}"]["patch"]["requestBody"].is_object());
    }
}

// What GET /api/v1/live sends: one JSON object per text frame.

export type CallEventKind =
  | { type: "offered"; direction: "inbound" | "outbound" | "internal"; from: string; to: string; user: string | null; number: string | null; trunk: string | null }
  | { type: "ringing"; target: string }
  | { type: "answered"; by: string }
  | { type: "held" }
  | { type: "resumed" }
  | { type: "transferred"; to: string; attended: boolean }
  | { type: "recording_started"; path: string }
  | { type: "recording_finished"; path: string; duration_ms: number }
  | { type: "ended"; cause: string; status: number | null };

export type CallEvent = { call_id: string; seq: number; at_ms: number; leg: string | null } & CallEventKind;

/** Queue and operator events: `type` names what happened; the rest depends on it. */
export type QueueEvent = {
  at_ms: number;
  type: string;
  queue?: string;
  operator?: string;
  call?: { id: string } | string;
  [more: string]: unknown;
};

export type Reminder = { id: number; title?: string; starts_at?: string; [more: string]: unknown };

export type LiveMessage =
  | { type: "call"; event: CallEvent }
  | { type: "queue"; event: QueueEvent }
  | { type: "reminder"; event: Reminder }
  | { type: "lagged"; missed: number }
  | { type: string; [more: string]: unknown };

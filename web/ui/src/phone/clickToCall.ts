// Click-to-call (KAW 12.4): kolokol rings the operator's own phone, and once it answers
// dials the number through their trunk; the softphone answers that leg by itself.
import { api, ok } from "@/api/client";

export async function clickToCall(to: string): Promise<string> {
  const placed = await ok(api.POST("/api/v1/calls", { body: { to } }));
  return placed.call_id;
}
